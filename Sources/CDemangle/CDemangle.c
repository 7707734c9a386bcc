// Declarations only (include/CDemangle.h): the functions are the Swift runtime's, libstdc++'s
// and libiberty's.
#include "CDemangle.h"
