/* native/reader.c's exports (createPoller, pollerWatch, pollerUnwatch, pollerClose), added to the addon's. */
#ifndef RTMP_SERVER_READER_H
#define RTMP_SERVER_READER_H
#include <node_api.h>
int reader_init(napi_env env, napi_value exports);
#endif
