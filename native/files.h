/* native/files.c's export (writeFileAtomic), added to the addon's. */
#ifndef RTMP_SERVER_FILES_H
#define RTMP_SERVER_FILES_H
#include <node_api.h>
int files_init(napi_env env, napi_value exports);
#endif
