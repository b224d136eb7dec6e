/* ht_json.h — a strict little JSON parser for the tests (RFC 8259 syntax, no extensions).
 *
 *   ht_json doc;
 *   if (ht_json_parse(&doc, text, len)) { int v = ht_json_member(&doc, 0, "version"); ... }
 *
 * The text must be exactly one value (whitespace around it allowed). Nodes live in the
 * fixed array of the ht_json struct (HT_JSON_MAX_NODES); node 0 is the root. Objects and
 * arrays link their children through `first` and `next`. Numbers keep their text and,
 * when they are non-negative integers that fit, `u` (with `is_uint` set). Strings keep a
 * pointer into the text (escapes are validated, not decoded; ht_json_str_eq compares
 * escape-free strings). Header-only; no allocation.
 */
#ifndef HT_JSON_H
#define HT_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef HT_JSON_MAX_NODES
#define HT_JSON_MAX_NODES 8192
#endif
#define HT_JSON_MAX_DEPTH 64
#define HT_JSON_FN static __attribute__((unused))

enum { HT_JNULL, HT_JFALSE, HT_JTRUE, HT_JNUM, HT_JSTR, HT_JARR, HT_JOBJ };

typedef struct {
  int type;
  int first, next;          /* children of arrays/objects; -1 when none */
  const char* key;          /* member name (into the text, without quotes), or NULL */
  size_t keylen;
  const char* str;          /* string value (without quotes) or number text */
  size_t len;
  int is_uint;              /* number: a non-negative integer that fits in 64 bits */
  uint64_t u;
} ht_json_node;

typedef struct {
  ht_json_node n[HT_JSON_MAX_NODES];
  int count;
  const char* s;
  size_t len, pos;
  const char* error;        /* why parsing failed */
  size_t error_at;
} ht_json;

HT_JSON_FN int ht_json_fail(ht_json* d, const char* why) {
  if (!d->error) { d->error = why; d->error_at = d->pos; }
  return -1;
}

HT_JSON_FN void ht_json_ws(ht_json* d) {
  while (d->pos < d->len && (d->s[d->pos] == ' ' || d->s[d->pos] == '\t' || d->s[d->pos] == '\n' ||
                             d->s[d->pos] == '\r'))
    d->pos++;
}

HT_JSON_FN int ht_json_lit(ht_json* d, const char* w) {
  size_t n = strlen(w);
  if (d->len - d->pos < n || memcmp(d->s + d->pos, w, n) != 0) return 0;
  d->pos += n;
  return 1;
}

/* A string at d->pos (opening quote); sets *out and *outlen to its contents. */
HT_JSON_FN int ht_json_string(ht_json* d, const char** out, size_t* outlen) {
  if (d->pos >= d->len || d->s[d->pos] != '"') return ht_json_fail(d, "expected a string");
  size_t start = ++d->pos;
  while (d->pos < d->len) {
    unsigned char c = (unsigned char)d->s[d->pos];
    if (c == '"') {
      *out = d->s + start;
      *outlen = d->pos - start;
      d->pos++;
      return 0;
    }
    if (c < 0x20) return ht_json_fail(d, "control character in a string");
    if (c == '\\') {
      d->pos++;
      if (d->pos >= d->len) break;
      c = (unsigned char)d->s[d->pos];
      if (c == 'u') {
        for (int k = 1; k <= 4; k++) {
          char h = d->pos + (size_t)k < d->len ? d->s[d->pos + (size_t)k] : 0;
          if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
            return ht_json_fail(d, "bad \\u escape");
        }
        d->pos += 4;
      } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
        return ht_json_fail(d, "bad escape");
      }
    }
    d->pos++;
  }
  return ht_json_fail(d, "unterminated string");
}

HT_JSON_FN int ht_json_number(ht_json* d, ht_json_node* nd) {
  size_t start = d->pos;
  int neg = 0, integer = 1;
  if (d->pos < d->len && d->s[d->pos] == '-') { neg = 1; d->pos++; }
  if (d->pos >= d->len || d->s[d->pos] < '0' || d->s[d->pos] > '9') return ht_json_fail(d, "bad number");
  if (d->s[d->pos] == '0') {
    d->pos++;
    if (d->pos < d->len && d->s[d->pos] >= '0' && d->s[d->pos] <= '9') return ht_json_fail(d, "leading zero");
  } else {
    while (d->pos < d->len && d->s[d->pos] >= '0' && d->s[d->pos] <= '9') d->pos++;
  }
  size_t int_end = d->pos;
  if (d->pos < d->len && d->s[d->pos] == '.') {
    integer = 0;
    d->pos++;
    if (d->pos >= d->len || d->s[d->pos] < '0' || d->s[d->pos] > '9') return ht_json_fail(d, "bad fraction");
    while (d->pos < d->len && d->s[d->pos] >= '0' && d->s[d->pos] <= '9') d->pos++;
  }
  if (d->pos < d->len && (d->s[d->pos] == 'e' || d->s[d->pos] == 'E')) {
    integer = 0;
    d->pos++;
    if (d->pos < d->len && (d->s[d->pos] == '+' || d->s[d->pos] == '-')) d->pos++;
    if (d->pos >= d->len || d->s[d->pos] < '0' || d->s[d->pos] > '9') return ht_json_fail(d, "bad exponent");
    while (d->pos < d->len && d->s[d->pos] >= '0' && d->s[d->pos] <= '9') d->pos++;
  }
  nd->str = d->s + start;
  nd->len = d->pos - start;
  nd->is_uint = 0;
  if (integer && !neg) {
    uint64_t v = 0;
    int fits = 1;
    for (size_t i = start; i < int_end; i++) {
      unsigned dg = (unsigned)(d->s[i] - '0');
      if (v > (UINT64_MAX - dg) / 10) { fits = 0; break; }
      v = v * 10 + dg;
    }
    nd->is_uint = fits;
    nd->u = fits ? v : 0;
  }
  return 0;
}

HT_JSON_FN int ht_json_value(ht_json* d, int depth) {
  if (depth > HT_JSON_MAX_DEPTH) return ht_json_fail(d, "nested too deeply");
  if (d->count >= HT_JSON_MAX_NODES) return ht_json_fail(d, "too many nodes");
  int me = d->count++;
  ht_json_node* nd = &d->n[me];
  memset(nd, 0, sizeof *nd);
  nd->first = nd->next = -1;
  ht_json_ws(d);
  if (d->pos >= d->len) return ht_json_fail(d, "expected a value");
  char c = d->s[d->pos];
  if (c == '{' || c == '[') {
    int obj = c == '{';
    nd->type = obj ? HT_JOBJ : HT_JARR;
    d->pos++;
    ht_json_ws(d);
    if (d->pos < d->len && d->s[d->pos] == (obj ? '}' : ']')) { d->pos++; return me; }
    int last = -1;
    for (;;) {
      const char* key = NULL;
      size_t keylen = 0;
      if (obj) {
        ht_json_ws(d);
        if (ht_json_string(d, &key, &keylen) < 0) return -1;
        ht_json_ws(d);
        if (d->pos >= d->len || d->s[d->pos] != ':') return ht_json_fail(d, "expected ':'");
        d->pos++;
      }
      int child = ht_json_value(d, depth + 1);
      if (child < 0) return -1;
      d->n[child].key = key;
      d->n[child].keylen = keylen;
      if (last < 0) d->n[me].first = child; else d->n[last].next = child;
      last = child;
      ht_json_ws(d);
      if (d->pos < d->len && d->s[d->pos] == ',') { d->pos++; continue; }
      if (d->pos < d->len && d->s[d->pos] == (obj ? '}' : ']')) { d->pos++; return me; }
      return ht_json_fail(d, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  if (c == '"') {
    nd->type = HT_JSTR;
    return ht_json_string(d, &nd->str, &nd->len) < 0 ? -1 : me;
  }
  if (ht_json_lit(d, "true")) { nd->type = HT_JTRUE; return me; }
  if (ht_json_lit(d, "false")) { nd->type = HT_JFALSE; return me; }
  if (ht_json_lit(d, "null")) { nd->type = HT_JNULL; return me; }
  nd->type = HT_JNUM;
  return ht_json_number(d, nd) < 0 ? -1 : me;
}

/* Parse text[0, len) as exactly one JSON value. Returns 1, or 0 with d->error set. */
HT_JSON_FN int ht_json_parse(ht_json* d, const char* text, size_t len) {
  d->count = 0;
  d->s = text;
  d->len = len;
  d->pos = 0;
  d->error = NULL;
  d->error_at = 0;
  if (ht_json_value(d, 0) != 0) return 0;
  ht_json_ws(d);
  if (d->pos != d->len) { ht_json_fail(d, "text after the value"); return 0; }
  return 1;
}

HT_JSON_FN int ht_json_str_eq(const char* s, size_t n, const char* z) {
  return strlen(z) == n && memcmp(s, z, n) == 0;
}

/* Number of members of object `obj` named `key`. */
HT_JSON_FN int ht_json_count(const ht_json* d, int obj, const char* key) {
  int c = 0;
  for (int i = d->n[obj].first; i >= 0; i = d->n[i].next)
    if (ht_json_str_eq(d->n[i].key, d->n[i].keylen, key)) c++;
  return c;
}

/* The member of object `obj` named `key`, or -1. */
HT_JSON_FN int ht_json_member(const ht_json* d, int obj, const char* key) {
  if (obj < 0 || d->n[obj].type != HT_JOBJ) return -1;
  for (int i = d->n[obj].first; i >= 0; i = d->n[i].next)
    if (ht_json_str_eq(d->n[i].key, d->n[i].keylen, key)) return i;
  return -1;
}

/* Number of children of an array or object. */
HT_JSON_FN int ht_json_length(const ht_json* d, int node) {
  int c = 0;
  for (int i = d->n[node].first; i >= 0; i = d->n[i].next) c++;
  return c;
}

#endif /* HT_JSON_H */
