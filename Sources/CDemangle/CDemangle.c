// Declarations only (include/CDemangle.h): the functions are the Swift runtime's and libstdc++'s.
#include "CDemangle.h"
