"""The engine's public headers, for core/BUILD and the wheel (python/BUILD)."""

# What a consumer includes as "tls/<name>", but tls.h (core/BUILD's
# :umbrella). CMakeLists.txt lists the same (TLS_PUBLIC_HEADERS,
# TLS_TEMPLATE_HEADERS).
PUBLIC_HDRS = [
    "counter.h",
    "data.h",
    "error.h",
    "key.h",
    "slot.h",
    "store.h",
    "task.h",
    "thread_info.h",
    "threads.h",
    # Included by the public headers (their templates, the C++20 check); not API.
    "internal/abi.h",
    "internal/data_box.h",
    "internal/forced_unwind.h",
    "internal/handler.h",
    "internal/hash_secret.h",
    "internal/key_hash.h",
    "internal/require_cxx20.h",
    "internal/slot_ops.h",
    "internal/task_frame.h",
]
