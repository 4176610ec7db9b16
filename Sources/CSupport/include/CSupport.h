/* C definitions (not just declarations) that the libc in use may lack. */
#ifndef SLUICE_CSUPPORT_H
#define SLUICE_CSUPPORT_H
int csupport_linked(void);
#endif
