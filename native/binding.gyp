# The native hash engine (stowage_hash.c). It links nothing: the OpenSSL SHA functions it
# calls are resolved at load time from the node binary, which exports them for addons, and
# it compiles against the OpenSSL headers shipped in Node's include directory
# (<nodedir>/include/node/openssl), i.e. the very OpenSSL that node runs.
{
  "targets": [
    {
      "target_name": "stowage_hash",
      "sources": ["stowage_hash.c"],
      "defines": [
        "NAPI_VERSION=8",
        # SHA256_Init & co. are deprecated in OpenSSL 3 in favour of EVP, whose contexts are
        # opaque; the public low-level context is the point here (see stowage_hash.c).
        "OPENSSL_SUPPRESS_DEPRECATED"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2", "-Wall", "-Wextra"] }
    }
  ]
}
