// Everything is in include/CLiveTable.h (static inline); SwiftPM needs one source file per C target.
#include "CLiveTable.h"
