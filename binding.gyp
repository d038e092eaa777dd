{
  "targets": [
    {
      "target_name": "rtmp_fanout",
      "sources": ["native/fanout.c", "native/reader.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
