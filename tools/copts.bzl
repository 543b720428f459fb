"""Compiler options shared by every C++ target of the project."""

TLS_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]
