/*
 * fuzz_s3_xml.c — libFuzzer target for the S3 request body parsers
 * (ks/s3_xml.h): CompleteMultipartUpload, Delete, CreateBucketConfiguration.
 *
 * Every input goes to all three parsers.  Properties: results are within
 * the documented limits (1..10000 parts numbered 1..10000 with an ETag,
 * 1..1000 non-empty keys of at most 1024 bytes), and what the Delete parser
 * accepts can be written back as a DeleteResult (keys are XML text, so only
 * control characters may be refused) which libxml2 re-reads.
 */
#include "ks/err.h"
#include "ks/s3_xml.h"

#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_complete(const uint8_t *p, size_t n)
{
  ks_s3_complete_req_t r;
  if (ks_s3_xml_parse_complete(p, n, &r) != KS_S3_OK) {
    if (r.parts != NULL)
      abort();
    return;
  }
  if (r.nparts == 0 || r.nparts > KS_S3_MAX_PARTS)
    abort();
  for (size_t i = 0; i < r.nparts; i++)
    if (r.parts[i].number < 1 || r.parts[i].number > KS_S3_MAX_PARTS ||
        r.parts[i].etag == NULL || r.parts[i].etag[0] == '\0')
      abort();
  ks_s3_complete_req_free(&r);
}

static void fz_delete(const uint8_t *p, size_t n)
{
  ks_s3_delete_req_t r;
  if (ks_s3_xml_parse_delete(p, n, &r) != KS_S3_OK)
    return;
  if (r.nkeys == 0 || r.nkeys > KS_S3_MAX_DELETE)
    abort();
  ks_s3_delete_entry_t *e = calloc(r.nkeys, sizeof(*e));
  if (e == NULL)
    abort();
  for (size_t i = 0; i < r.nkeys; i++) {
    size_t l = strlen(r.keys[i]);
    if (l == 0 || l > KS_S3_MAX_KEY_LEN)
      abort();
    e[i] = (ks_s3_delete_entry_t){r.keys[i], (ks_s3_code_t)(i % 3), NULL};
  }
  ks_buf_t b = KS_BUF_INIT;
  int rc = ks_s3_xml_write_delete(&b, r.quiet, e, r.nkeys);
  if (rc != 0 && rc != KS_EPARSE)
    abort();
  if (rc == 0) {
    xmlDocPtr d = xmlReadMemory((const char *)b.data, (int)b.len, "w.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR |
                                    XML_PARSE_NOWARNING);
    if (d == NULL)
      abort();
    xmlFreeDoc(d);
  }
  ks_buf_free(&b);
  free(e);
  ks_s3_delete_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int initialised;
  if (!initialised) {
    ks_s3_xml_init();
    initialised = 1;
  }
  char *region = NULL;
  fz_complete(data, size);
  fz_delete(data, size);
  if (ks_s3_xml_parse_create_bucket(data, size, &region) != KS_S3_OK &&
      region != NULL)
    abort();
  free(region);
  return 0;
}
