// Included first by every public header, before its include guard: a consumer
// built with C++17 or older gets the one line below instead of a page of
// template and concept errors, and the rest of each public header is skipped
// (TLS_INTERNAL_CXX_TOO_OLD), so the line appears once. Not API.
#if !defined(TLS_INTERNAL_CXX_TOO_OLD) && (!defined(__cplusplus) || __cplusplus <= 201703L)
#error "tls requires C++20 (its headers use concepts): compile with -std=c++20 or later"
#define TLS_INTERNAL_CXX_TOO_OLD
#endif
