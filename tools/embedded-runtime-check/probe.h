/* What main.swift calls: the runtime's bridge-object retain/release through Sources/CSupport, and exit. */
#include "../../Sources/CSupport/include/CSupport.h"
void exit(int status) __attribute__((noreturn));
