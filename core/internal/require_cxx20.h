// Included first by every public header, before its include guard: a consumer
// built with C++17 or older gets one line, below, and nothing after it. An
// #error would not stop the compiler, and the consumer's own code would then
// fail on every use of tls (`'tls' has not been declared`, twenty times); an
// #include of a file that cannot exist is fatal in every compiler, so its name
// is the message, and compilation ends on that line. Not API.
#if !defined(__cplusplus) || __cplusplus <= 201703L
#include "tls requires C++20 (its headers use concepts): compile with -std=c++20 or later"
#endif
