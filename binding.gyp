{
  "targets": [
    {
      "target_name": "rtmp_fanout",
      "sources": ["native/fanout.c", "native/reader.c", "native/files.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
