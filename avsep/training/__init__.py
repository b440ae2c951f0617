"""Mix-and-separate training: configuration, distributed set-up, the loop, logging."""
