// pthread_attr_setsigmask_np is a GNU extension (glibc 2.32).
#define _GNU_SOURCE
#include "chost.h"

// SIGINT/SIGTERM arrive on whichever thread the kernel picks; the handler
// only writes the signal number to a pipe (async-signal-safe), and a host
// thread reading the pipe does the real work of stopping the run.
static int stop_pipe_fd = -1;

static void stop_signal_handler(int sig) {
    unsigned char byte = (unsigned char)sig;
    if (stop_pipe_fd >= 0) {
        ssize_t ignored = write(stop_pipe_fd, &byte, 1);
        (void)ignored;
    }
}

int host_install_stop_signals(int pipe_write_fd) {
    struct sigaction sa = {0};
    stop_pipe_fd = pipe_write_fd;
    sa.sa_handler = stop_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    return sigaction(SIGTERM, &sa, NULL);
}

int host_mask_without(int sig, sigset_t *mask) {
    if (pthread_sigmask(SIG_SETMASK, NULL, mask) != 0) return -1;
    return sigdelset(mask, sig);
}

int host_attr_set_sigmask(pthread_attr_t *attr, const sigset_t *mask) {
    return pthread_attr_setsigmask_np(attr, mask);
}
