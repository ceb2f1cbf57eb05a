// SHA-256 and SHA-512 over the OpenSSL that the `node` binary itself carries and exports
// for addons (nm -D $(which node) | grep SHA256_): no library of our own to link, and the
// same SHA-NI/AVX2 code paths as node:crypto. The low-level SHA*_CTX is used because, unlike
// an EVP context, its fields are public, so a state converts exactly to and from the
// persisted Go MarshalBinary encoding (src/pipeline/hash-state.ts):
//
//   magic(4) | h[8] big-endian | pending bytes, zero-padded to a block | byte count, u64 big-endian
//
// OpenSSL keeps the same facts as h[8], a bit count split over Nl/Nh, the pending bytes in
// data (raw bytes, whatever its declared type) and their number in num; translated field by
// field below. Nothing is kept between calls: every call starts from the state it is given.
//
// JS surface (called from src/workers/native-engine.ts, which validates arguments first):
//   update(algorithm: 'sha256'|'sha512', state: Uint8Array, chunks: Uint8Array[]): Uint8Array
//   digest(algorithm: 'sha256'|'sha512', state: Uint8Array): Uint8Array

#include <stdint.h>
#include <string.h>

#include <node_api.h>
#include <openssl/sha.h>

#define GO_MAGIC_BYTES 4
#define SHA256_GO_SIZE (GO_MAGIC_BYTES + 8 * 4 + SHA256_CBLOCK + 8)
#define SHA512_GO_SIZE (GO_MAGIC_BYTES + 8 * 8 + SHA512_CBLOCK + 8)
// Byte counts must stay exact in a JS number (the TypeScript side refuses larger ones too).
#define MAX_SAFE_INTEGER 9007199254740991ULL

static const uint8_t SHA256_MAGIC[GO_MAGIC_BYTES] = {'s', 'h', 'a', 0x03};
static const uint8_t SHA512_MAGIC[GO_MAGIC_BYTES] = {'s', 'h', 'a', 0x07};

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint64_t get_be64(const uint8_t *p) {
  return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v) {
  put_be32(p, (uint32_t)(v >> 32));
  put_be32(p + 4, (uint32_t)v);
}

// ---- SHA-256: SHA256_CTX { SHA_LONG h[8]; SHA_LONG Nl, Nh; SHA_LONG data[16]; unsigned int num, md_len; }

static int sha256_from_go(const uint8_t *in, size_t length, SHA256_CTX *ctx) {
  if (length != SHA256_GO_SIZE || memcmp(in, SHA256_MAGIC, GO_MAGIC_BYTES) != 0) return 0;
  const uint8_t *words = in + GO_MAGIC_BYTES;
  const uint8_t *block = words + 8 * 4;
  uint64_t count = get_be64(block + SHA256_CBLOCK);
  if (count > MAX_SAFE_INTEGER) return 0;
  SHA256_Init(ctx);  // md_len, and zeroes everything else
  for (int i = 0; i < 8; i++) ctx->h[i] = get_be32(words + 4 * i);
  ctx->Nl = (SHA_LONG)(count << 3);  // bit count, low 32 bits
  ctx->Nh = (SHA_LONG)(count >> 29); // and high 32 bits
  ctx->num = (unsigned int)(count % SHA256_CBLOCK);
  memcpy(ctx->data, block, ctx->num);
  return 1;
}

static void sha256_to_go(const SHA256_CTX *ctx, uint8_t *out) {
  memset(out, 0, SHA256_GO_SIZE);
  memcpy(out, SHA256_MAGIC, GO_MAGIC_BYTES);
  uint8_t *words = out + GO_MAGIC_BYTES;
  uint8_t *block = words + 8 * 4;
  for (int i = 0; i < 8; i++) put_be32(words + 4 * i, ctx->h[i]);
  memcpy(block, ctx->data, ctx->num);  // only the pending bytes: Go zero-pads the rest
  put_be64(block + SHA256_CBLOCK, ((uint64_t)ctx->Nh << 29) | ((uint64_t)ctx->Nl >> 3));
}

// ---- SHA-512: SHA512_CTX { SHA_LONG64 h[8]; SHA_LONG64 Nl, Nh; union { SHA_LONG64 d[16]; unsigned char p[128]; } u; unsigned int num, md_len; }

static int sha512_from_go(const uint8_t *in, size_t length, SHA512_CTX *ctx) {
  if (length != SHA512_GO_SIZE || memcmp(in, SHA512_MAGIC, GO_MAGIC_BYTES) != 0) return 0;
  const uint8_t *words = in + GO_MAGIC_BYTES;
  const uint8_t *block = words + 8 * 8;
  uint64_t count = get_be64(block + SHA512_CBLOCK);
  if (count > MAX_SAFE_INTEGER) return 0;
  SHA512_Init(ctx);
  for (int i = 0; i < 8; i++) ctx->h[i] = get_be64(words + 8 * i);
  ctx->Nl = (SHA_LONG64)count << 3;  // bit count, low 64 bits
  ctx->Nh = (SHA_LONG64)count >> 61; // and high 64 bits
  ctx->num = (unsigned int)(count % SHA512_CBLOCK);
  memcpy(ctx->u.p, block, ctx->num);
  return 1;
}

static void sha512_to_go(const SHA512_CTX *ctx, uint8_t *out) {
  memset(out, 0, SHA512_GO_SIZE);
  memcpy(out, SHA512_MAGIC, GO_MAGIC_BYTES);
  uint8_t *words = out + GO_MAGIC_BYTES;
  uint8_t *block = words + 8 * 8;
  for (int i = 0; i < 8; i++) put_be64(words + 8 * i, ctx->h[i]);
  memcpy(block, ctx->u.p, ctx->num);
  put_be64(block + SHA512_CBLOCK, ((uint64_t)ctx->Nh << 61) | ((uint64_t)ctx->Nl >> 3));
}

// ---- N-API glue

typedef enum { ALG_INVALID, ALG_SHA256, ALG_SHA512 } algorithm_t;

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), "ERR_STOWAGE_HASH", "N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static algorithm_t algorithm_of(napi_env env, napi_value value) {
  char name[8];
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, name, sizeof(name), &length) != napi_ok) return ALG_INVALID;
  if (length == 6 && memcmp(name, "sha256", 6) == 0) return ALG_SHA256;
  if (length == 6 && memcmp(name, "sha512", 6) == 0) return ALG_SHA512;
  return ALG_INVALID;
}

// The bytes of a Uint8Array (Buffers included), or 0 if `value` is not one.
static int bytes_of(napi_env env, napi_value value, const uint8_t **data, size_t *length) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  void *raw = NULL;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return 0;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = raw != NULL ? raw : (const uint8_t *)"";
  return 1;
}

static napi_value new_uint8array(napi_env env, size_t length, uint8_t **data) {
  napi_value buffer, array;
  if (napi_create_arraybuffer(env, length, (void **)data, &buffer) != napi_ok) return NULL;
  if (napi_create_typedarray(env, napi_uint8_array, length, buffer, 0, &array) != napi_ok) return NULL;
  return array;
}

typedef union {
  SHA256_CTX sha256;
  SHA512_CTX sha512;
} hash_ctx;

// Loads args[0] (algorithm) and args[1] (state) into ctx; throws and returns ALG_INVALID on bad input.
static algorithm_t load_state(napi_env env, napi_value *args, hash_ctx *ctx) {
  algorithm_t algorithm = algorithm_of(env, args[0]);
  const uint8_t *state;
  size_t length;
  if (algorithm == ALG_INVALID) {
    napi_throw_type_error(env, "ERR_STOWAGE_HASH", "algorithm must be 'sha256' or 'sha512'");
    return ALG_INVALID;
  }
  if (!bytes_of(env, args[1], &state, &length) ||
      !(algorithm == ALG_SHA256 ? sha256_from_go(state, length, &ctx->sha256) : sha512_from_go(state, length, &ctx->sha512))) {
    napi_throw_type_error(env, "ERR_STOWAGE_HASH", algorithm == ALG_SHA256 ? "not a sha256 hash state" : "not a sha512 hash state");
    return ALG_INVALID;
  }
  return algorithm;
}

static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_STOWAGE_HASH", "update(algorithm, state, chunks)");
    return NULL;
  }
  hash_ctx ctx;
  algorithm_t algorithm = load_state(env, args, &ctx);
  if (algorithm == ALG_INVALID) return NULL;

  bool is_array = false;
  uint32_t count = 0;
  CHECK(env, napi_is_array(env, args[2], &is_array));
  if (!is_array) {
    napi_throw_type_error(env, "ERR_STOWAGE_HASH", "chunks must be an array of Uint8Array");
    return NULL;
  }
  CHECK(env, napi_get_array_length(env, args[2], &count));
  for (uint32_t i = 0; i < count; i++) {
    napi_value chunk;
    const uint8_t *data;
    size_t length;
    CHECK(env, napi_get_element(env, args[2], i, &chunk));
    if (!bytes_of(env, chunk, &data, &length)) {
      napi_throw_type_error(env, "ERR_STOWAGE_HASH", "chunks must be an array of Uint8Array");
      return NULL;
    }
    if (algorithm == ALG_SHA256) SHA256_Update(&ctx.sha256, data, length);
    else SHA512_Update(&ctx.sha512, data, length);
  }

  uint8_t *out;
  napi_value result = new_uint8array(env, algorithm == ALG_SHA256 ? SHA256_GO_SIZE : SHA512_GO_SIZE, &out);
  if (result == NULL) {
    napi_throw_error(env, "ERR_STOWAGE_HASH", "cannot allocate the state");
    return NULL;
  }
  if (algorithm == ALG_SHA256) sha256_to_go(&ctx.sha256, out);
  else sha512_to_go(&ctx.sha512, out);
  return result;
}

static napi_value digest(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_STOWAGE_HASH", "digest(algorithm, state)");
    return NULL;
  }
  hash_ctx ctx;
  algorithm_t algorithm = load_state(env, args, &ctx);
  if (algorithm == ALG_INVALID) return NULL;

  uint8_t *out;
  napi_value result = new_uint8array(env, algorithm == ALG_SHA256 ? SHA256_DIGEST_LENGTH : SHA512_DIGEST_LENGTH, &out);
  if (result == NULL) {
    napi_throw_error(env, "ERR_STOWAGE_HASH", "cannot allocate the digest");
    return NULL;
  }
  // Final works on the local copy of the context only; the caller's state is untouched.
  if (algorithm == ALG_SHA256) SHA256_Final(out, &ctx.sha256);
  else SHA512_Final(out, &ctx.sha512);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"update", NULL, update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"digest", NULL, digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
