/*
 * ctl_pki.h: `vigilctl pki`, the offline commands that create and inspect
 * the deployment's CA and the center's server certificate (pki.c).
 */
#ifndef VIGIL_CTL_PKI_H
#define VIGIL_CTL_PKI_H

/* argv[0] is "pki"; returns the exit status (0, 1 error, 2 usage). */
int ctl_pki(int argc, char **argv);

#endif
