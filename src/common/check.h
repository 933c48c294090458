// Always-on assertions for programmer errors (never for bad input: bad input
// gets a Status). A failed check prints file:line and the message, then aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace cosmos::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const char* msg);
}  // namespace cosmos::internal

// Aborts with a diagnostic if `cond` is false. Enabled in every build type.
#define COSMOS_CHECK(cond)                                                 \
  do {                                                                     \
    if (__builtin_expect(!(cond), 0))                                      \
      ::cosmos::internal::CheckFailed(__FILE__, __LINE__, #cond, nullptr); \
  } while (0)

// As COSMOS_CHECK, with an explanatory message (a C string).
#define COSMOS_CHECK_MSG(cond, msg)                                      \
  do {                                                                   \
    if (__builtin_expect(!(cond), 0))                                    \
      ::cosmos::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

// Aborts if a Status-returning expression fails (for tests, tools and places
// where failure is a bug).
#define COSMOS_CHECK_OK(expr)                                                   \
  do {                                                                          \
    const auto& cosmos_check_status_ = (expr);                                  \
    if (!cosmos_check_status_.ok())                                             \
      ::cosmos::internal::CheckFailed(__FILE__, __LINE__, #expr,                \
                                      cosmos_check_status_.ToString().c_str()); \
  } while (0)
