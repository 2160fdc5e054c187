/*
 * nodes.h: the largest cluster sluice runs, defined once. The config, the
 * shared segment's cluster status and the raft module size their node
 * arrays with it (each names it after itself, tied here by definition).
 */
#ifndef SLUICE_NODES_H
#define SLUICE_NODES_H

/* Voters of one raft group, this node included (odd sizes: 1, 3, 5, 7). */
#define SL_NODES_MAX 7

#endif
