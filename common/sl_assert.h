/*
 * sl_assert.h: SL_ASSERT, an assertion that stays on in every build type
 * (NDEBUG and RelWithDebInfo do not remove it). It guards our own
 * invariants: storage writes and reads, raft transitions, ring releases,
 * apply. It must never fire on bytes from the network or the disk; those
 * get an error code (STYLE.md §5). On failure it logs where and what, then
 * aborts, so the master restarts the process and a core shows the state.
 */
#ifndef SLUICE_ASSERT_H
#define SLUICE_ASSERT_H

void sl_assert_fail(const char *expr, const char *file, int line, const char *func) __attribute__((noreturn));

#define SL_ASSERT(e) ((e) ? (void)0 : sl_assert_fail(#e, __FILE__, __LINE__, __func__))

#endif
