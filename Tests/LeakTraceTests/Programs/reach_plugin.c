/* A library the reachability cases load with dlopen: a pointer kept only in its data. */
void *reach_plugin_slot;
