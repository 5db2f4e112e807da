/*
 * s3_xml.c — S3 error table, response documents and request body parsers
 * (ks/s3_xml.h), on libxml2.
 *
 * Writers go through xmlTextWriter into an xmlBuffer, so escaping is
 * libxml2's, never ours; an "xw" wrapper keeps the first error sticky
 * (like ks/enc.h) so a writer is a straight list of elements with one check
 * at the end.  Text is checked before it is written: it must be UTF-8 and
 * free of the control characters XML 1.0 cannot carry (a key may hold
 * them; clients that store such keys list with encoding-type=url, which
 * percent-encodes them first).
 *
 * Parsers refuse, before libxml2 runs, bodies above KS_S3_XML_MAX_BODY and
 * any DOCTYPE (the only way to declare entities), and run libxml2 with
 * XML_PARSE_NONET, without XML_PARSE_NOENT / DTDLOAD / HUGE, and silently
 * (NOERROR | NOWARNING: a hostile body must not fill the log).  Element
 * names are matched by local name, so bodies with or without the S3
 * namespace are accepted, as AWS does.  Unknown child elements of a Part
 * or Object (checksums, ETag variants of newer SDKs) are ignored.
 */
#include "ks/s3_xml.h"

#include "ks/err.h"
#include "ks/s3_req.h"
#include "ks/time.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <stdlib.h>
#include <string.h>

#define XW_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ---- Error table ------------------------------------------------------ */

typedef struct xs_err {
  const char *name;
  const char *message;
  int status;
} xs_err_t;

static const xs_err_t xs_errors[KS_S3_CODE_COUNT] = {
    [KS_S3_OK] = {"OK", "OK", 200},
#define KS__S3_ROW(id, text, st, msg) [KS_S3_##id] = {text, msg, st},
    KS_S3_ERRORS(KS__S3_ROW)
#undef KS__S3_ROW
};

static const xs_err_t *xs_err(ks_s3_code_t code)
{
  if ((unsigned)code >= KS_S3_CODE_COUNT)
    code = KS_S3_INTERNAL_ERROR;
  return &xs_errors[code];
}

const char *ks_s3_code_name(ks_s3_code_t code)
{
  return xs_err(code)->name;
}

int ks_s3_code_status(ks_s3_code_t code)
{
  return xs_err(code)->status;
}

const char *ks_s3_code_message(ks_s3_code_t code)
{
  return xs_err(code)->message;
}

void ks_s3_xml_init(void)
{
  xmlInitParser();
}

/* ---- Writer wrapper ---------------------------------------------------- */

typedef struct xw {
  xmlBufferPtr buf;
  xmlTextWriterPtr w;
  int err; /* first failure, sticky */
} xw_t;

static void xw_check(xw_t *x, int rc)
{
  if (rc < 0 && x->err == 0)
    x->err = -ENOMEM;
}

/* XML 1.0 text: UTF-8 without C0 controls other than tab, LF, CR. */
static bool xw_text_ok(const char *s)
{
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
      return false;
  }
  return ks_s3_utf8_valid(s, n);
}

static void xw_start(xw_t *x, const char *name)
{
  if (x->err == 0)
    xw_check(x, xmlTextWriterStartElement(x->w, BAD_CAST name));
}

static void xw_end(xw_t *x)
{
  if (x->err == 0)
    xw_check(x, xmlTextWriterEndElement(x->w));
}

static void xw_elem(xw_t *x, const char *name, const char *text)
{
  if (x->err != 0)
    return;
  if (!xw_text_ok(text)) {
    x->err = KS_EPARSE;
    return;
  }
  xw_check(x, xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST text));
}

/* text, URL-encoded first when url is set; NULL text writes nothing. */
static void xw_elem_enc(xw_t *x, const char *name, const char *text, bool url)
{
  if (text == NULL || x->err != 0)
    return;
  if (!url) {
    xw_elem(x, name, text);
    return;
  }
  ks_buf_t b = KS_BUF_INIT;
  int rc = ks_s3_url_encode(&b, text, strlen(text));
  rc = rc ? rc : ks_buf_append(&b, "", 1);
  if (rc != 0)
    x->err = rc;
  else
    xw_elem(x, name, (const char *)b.data);
  ks_buf_free(&b);
}

static void xw_elem_u64(xw_t *x, const char *name, uint64_t v)
{
  char s[24];
  snprintf(s, sizeof s, "%llu", (unsigned long long)v);
  xw_elem(x, name, s);
}

static void xw_elem_bool(xw_t *x, const char *name, bool v)
{
  xw_elem(x, name, v ? "true" : "false");
}

/* AWS prints milliseconds: 2013-05-24T00:00:00.000Z. */
static void xw_elem_time(xw_t *x, const char *name, int64_t sec)
{
  char s[KS_TIME_RFC3339_LEN + 1];
  if (sec > INT64_MAX / KS_NSEC_PER_SEC || sec < INT64_MIN / KS_NSEC_PER_SEC ||
      ks_time_format_rfc3339(s, sizeof s, sec * KS_NSEC_PER_SEC) !=
          KS_TIME_RFC3339_LEN) {
    if (x->err == 0)
      x->err = KS_EPARSE;
    return;
  }
  s[23] = 'Z';
  s[24] = '\0';
  xw_elem(x, name, s);
}

static void xw_owner(xw_t *x, const char *elem, const ks_s3_owner_t *o)
{
  if (o == NULL || o->id == NULL)
    return;
  xw_start(x, elem);
  xw_elem(x, "ID", o->id);
  if (o->display_name)
    xw_elem(x, "DisplayName", o->display_name);
  xw_end(x);
}

static void xw_begin(xw_t *x, const char *root, bool ns)
{
  memset(x, 0, sizeof(*x));
  x->buf = xmlBufferCreate();
  x->w = x->buf ? xmlNewTextWriterMemory(x->buf, 0) : NULL;
  if (x->w == NULL) {
    x->err = -ENOMEM;
    return;
  }
  xw_check(x, xmlTextWriterStartDocument(x->w, "1.0", "UTF-8", NULL));
  xw_start(x, root);
  if (ns && x->err == 0)
    xw_check(
        x, xmlTextWriterWriteAttribute(x->w, BAD_CAST "xmlns", BAD_CAST XW_NS));
}

/* Close the document and append it to out; frees the writer either way. */
static int xw_finish(xw_t *x, ks_buf_t *out)
{
  if (x->err == 0)
    xw_check(x, xmlTextWriterEndDocument(x->w));
  if (x->w)
    xmlFreeTextWriter(x->w); /* flushes into buf */
  int rc = x->err;
  if (rc == 0)
    rc = ks_buf_append(out, xmlBufferContent(x->buf),
                       (size_t)xmlBufferLength(x->buf));
  if (x->buf)
    xmlBufferFree(x->buf);
  return rc;
}

/* ---- Writers ------------------------------------------------------------- */

int ks_s3_xml_error(ks_buf_t *out, ks_s3_code_t code, const char *message,
                    const char *resource, const char *request_id)
{
  xw_t x;
  xw_begin(&x, "Error", false);
  xw_elem(&x, "Code", ks_s3_code_name(code));
  xw_elem(&x, "Message", message ? message : ks_s3_code_message(code));
  if (resource)
    xw_elem(&x, "Resource", resource);
  if (request_id)
    xw_elem(&x, "RequestId", request_id);
  return xw_finish(&x, out);
}

int ks_s3_xml_write_buckets(ks_buf_t *out, const ks_s3_owner_t *owner,
                            const ks_s3_bucket_entry_t *buckets, size_t n)
{
  xw_t x;
  xw_begin(&x, "ListAllMyBucketsResult", true);
  xw_owner(&x, "Owner", owner);
  xw_start(&x, "Buckets");
  for (size_t i = 0; i < n; i++) {
    xw_start(&x, "Bucket");
    xw_elem(&x, "Name", buckets[i].name);
    xw_elem_time(&x, "CreationDate", buckets[i].created_s);
    xw_end(&x);
  }
  xw_end(&x);
  return xw_finish(&x, out);
}

static void xw_prefixes(xw_t *x, const char *const *p, size_t n, bool url)
{
  for (size_t i = 0; i < n; i++) {
    xw_start(x, "CommonPrefixes");
    xw_elem_enc(x, "Prefix", p[i], url);
    xw_end(x);
  }
}

static void xw_list_head(xw_t *x, const ks_s3_list_result_t *r)
{
  bool url = r->encoding_url;
  xw_elem(x, "Name", r->bucket);
  xw_elem_enc(x, "Prefix", r->prefix ? r->prefix : "", url);
  if (r->v2) {
    xw_elem_enc(x, "ContinuationToken", r->continuation_token, false);
    xw_elem_enc(x, "NextContinuationToken", r->next_continuation_token, false);
    xw_elem_enc(x, "StartAfter", r->start_after, url);
    xw_elem_u64(x, "KeyCount", r->ncontents + r->nprefixes);
  } else {
    xw_elem_enc(x, "Marker", r->marker ? r->marker : "", url);
    xw_elem_enc(x, "NextMarker", r->next_marker, url);
  }
  xw_elem_u64(x, "MaxKeys", (uint64_t)(r->max_keys < 0 ? 0 : r->max_keys));
  xw_elem_enc(x, "Delimiter", r->delimiter, url);
  xw_elem_bool(x, "IsTruncated", r->is_truncated);
  if (url)
    xw_elem(x, "EncodingType", "url");
}

int ks_s3_xml_write_list(ks_buf_t *out, const ks_s3_list_result_t *r)
{
  xw_t x;
  xw_begin(&x, "ListBucketResult", true);
  xw_list_head(&x, r);
  for (size_t i = 0; i < r->ncontents; i++) {
    const ks_s3_object_entry_t *e = &r->contents[i];
    xw_start(&x, "Contents");
    xw_elem_enc(&x, "Key", e->key, r->encoding_url);
    xw_elem_time(&x, "LastModified", e->modified_s);
    xw_elem(&x, "ETag", e->etag);
    xw_elem_u64(&x, "Size", e->size);
    xw_owner(&x, "Owner", r->owner);
    xw_elem(&x, "StorageClass",
            e->storage_class ? e->storage_class : "STANDARD");
    xw_end(&x);
  }
  xw_prefixes(&x, r->common_prefixes, r->nprefixes, r->encoding_url);
  return xw_finish(&x, out);
}

int ks_s3_xml_write_initiate(ks_buf_t *out, const char *bucket, const char *key,
                             const char *upload_id)
{
  xw_t x;
  xw_begin(&x, "InitiateMultipartUploadResult", true);
  xw_elem(&x, "Bucket", bucket);
  xw_elem(&x, "Key", key);
  xw_elem(&x, "UploadId", upload_id);
  return xw_finish(&x, out);
}

int ks_s3_xml_write_complete(ks_buf_t *out, const char *location,
                             const char *bucket, const char *key,
                             const char *etag)
{
  xw_t x;
  xw_begin(&x, "CompleteMultipartUploadResult", true);
  xw_elem(&x, "Location", location);
  xw_elem(&x, "Bucket", bucket);
  xw_elem(&x, "Key", key);
  xw_elem(&x, "ETag", etag);
  return xw_finish(&x, out);
}

int ks_s3_xml_write_parts(ks_buf_t *out, const ks_s3_parts_result_t *r)
{
  xw_t x;
  xw_begin(&x, "ListPartsResult", true);
  xw_elem(&x, "Bucket", r->bucket);
  xw_elem(&x, "Key", r->key);
  xw_elem(&x, "UploadId", r->upload_id);
  xw_owner(&x, "Initiator", r->owner);
  xw_owner(&x, "Owner", r->owner);
  xw_elem(&x, "StorageClass", "STANDARD");
  xw_elem_u64(&x, "PartNumberMarker", (uint64_t)r->part_number_marker);
  xw_elem_u64(&x, "NextPartNumberMarker", (uint64_t)r->next_part_number_marker);
  xw_elem_u64(&x, "MaxParts", (uint64_t)r->max_parts);
  xw_elem_bool(&x, "IsTruncated", r->is_truncated);
  for (size_t i = 0; i < r->nparts; i++) {
    xw_start(&x, "Part");
    xw_elem_u64(&x, "PartNumber", (uint64_t)r->parts[i].number);
    xw_elem_time(&x, "LastModified", r->parts[i].modified_s);
    xw_elem(&x, "ETag", r->parts[i].etag);
    xw_elem_u64(&x, "Size", r->parts[i].size);
    xw_end(&x);
  }
  return xw_finish(&x, out);
}

int ks_s3_xml_write_uploads(ks_buf_t *out, const ks_s3_uploads_result_t *r)
{
  bool url = r->encoding_url;
  xw_t x;
  xw_begin(&x, "ListMultipartUploadsResult", true);
  xw_elem(&x, "Bucket", r->bucket);
  xw_elem_enc(&x, "KeyMarker", r->key_marker ? r->key_marker : "", url);
  xw_elem(&x, "UploadIdMarker", r->upload_id_marker ? r->upload_id_marker : "");
  xw_elem_enc(&x, "NextKeyMarker", r->next_key_marker, url);
  xw_elem_enc(&x, "NextUploadIdMarker", r->next_upload_id_marker, false);
  xw_elem_enc(&x, "Delimiter", r->delimiter, url);
  xw_elem_enc(&x, "Prefix", r->prefix ? r->prefix : "", url);
  xw_elem_u64(&x, "MaxUploads", (uint64_t)r->max_uploads);
  xw_elem_bool(&x, "IsTruncated", r->is_truncated);
  if (url)
    xw_elem(&x, "EncodingType", "url");
  for (size_t i = 0; i < r->nuploads; i++) {
    xw_start(&x, "Upload");
    xw_elem_enc(&x, "Key", r->uploads[i].key, url);
    xw_elem(&x, "UploadId", r->uploads[i].upload_id);
    xw_owner(&x, "Initiator", r->owner);
    xw_owner(&x, "Owner", r->owner);
    xw_elem(&x, "StorageClass", "STANDARD");
    xw_elem_time(&x, "Initiated", r->uploads[i].initiated_s);
    xw_end(&x);
  }
  xw_prefixes(&x, r->common_prefixes, r->nprefixes, url);
  return xw_finish(&x, out);
}

int ks_s3_xml_write_copy(ks_buf_t *out, bool part, const char *etag,
                         int64_t modified_s)
{
  xw_t x;
  xw_begin(&x, part ? "CopyPartResult" : "CopyObjectResult", true);
  xw_elem_time(&x, "LastModified", modified_s);
  xw_elem(&x, "ETag", etag);
  return xw_finish(&x, out);
}

int ks_s3_xml_write_delete(ks_buf_t *out, bool quiet,
                           const ks_s3_delete_entry_t *e, size_t n)
{
  xw_t x;
  xw_begin(&x, "DeleteResult", true);
  for (size_t i = 0; i < n; i++) {
    if (e[i].code == KS_S3_OK && quiet)
      continue;
    xw_start(&x, e[i].code == KS_S3_OK ? "Deleted" : "Error");
    xw_elem(&x, "Key", e[i].key);
    if (e[i].code != KS_S3_OK) {
      xw_elem(&x, "Code", ks_s3_code_name(e[i].code));
      xw_elem(&x, "Message",
              e[i].message ? e[i].message : ks_s3_code_message(e[i].code));
    }
    xw_end(&x);
  }
  return xw_finish(&x, out);
}

int ks_s3_xml_write_location(ks_buf_t *out, const char *region)
{
  xw_t x;
  xw_begin(&x, "LocationConstraint", true);
  if (region && strcmp(region, "us-east-1") != 0 && x.err == 0)
    xw_check(&x, xmlTextWriterWriteString(x.w, BAD_CAST region));
  return xw_finish(&x, out);
}

/* ---- Parsers ------------------------------------------------------------- */

/* Parse body into a document whose root is `root`; NULL and *code set on
 * failure. */
static xmlDocPtr xp_read(const void *body, size_t len, const char *root,
                         ks_s3_code_t *code)
{
  *code = KS_S3_MALFORMED_XML;
  if (len > KS_S3_XML_MAX_BODY) {
    *code = KS_S3_MAX_MESSAGE_LENGTH_EXCEEDED;
    return NULL;
  }
  if (len == 0 || memmem(body, len, "<!DOCTYPE", 9) != NULL)
    return NULL;
  xmlDocPtr doc =
      xmlReadMemory(body, (int)len, "body.xml", NULL,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlNodePtr r = doc ? xmlDocGetRootElement(doc) : NULL;
  if (r == NULL || doc->intSubset != NULL || doc->extSubset != NULL ||
      strcmp((const char *)r->name, root) != 0) {
    xmlFreeDoc(doc);
    return NULL;
  }
  *code = KS_S3_OK;
  return doc;
}

static bool xp_is(const xmlNode *n, const char *name)
{
  return n->type == XML_ELEMENT_NODE &&
         strcmp((const char *)n->name, name) == 0;
}

/* A non-element child that is not whitespace text makes a shape error. */
static bool xp_stray(const xmlNode *n)
{
  if (n->type == XML_ELEMENT_NODE || n->type == XML_COMMENT_NODE)
    return false;
  if (n->type != XML_TEXT_NODE || n->content == NULL)
    return true;
  const char *s = (const char *)n->content;
  return s[strspn(s, " \t\r\n")] != '\0';
}

/* The text of an element (malloc'd, caller frees), or NULL. */
static char *xp_text(const xmlNode *n)
{
  xmlChar *c = xmlNodeGetContent(n);
  if (c == NULL)
    return NULL;
  char *s = strdup((const char *)c);
  xmlFree(c);
  return s;
}

/* "  42 " -> 42 within 1..max, else -1. */
static int xp_int(const xmlNode *n, int max)
{
  char *s = xp_text(n);
  if (s == NULL)
    return -1;
  const char *p = s + strspn(s, " \t\r\n");
  size_t d = strspn(p, "0123456789");
  long v = -1;
  if (d > 0 && d <= 6 && p[d + strspn(p + d, " \t\r\n")] == '\0')
    v = strtol(p, NULL, 10);
  free(s);
  return v >= 1 && v <= max ? (int)v : -1;
}

static ks_s3_code_t xp_part(const xmlNode *part, ks_s3_complete_part_t *out)
{
  out->number = -1;
  for (const xmlNode *c = part->children; c; c = c->next) {
    if (xp_stray(c))
      return KS_S3_MALFORMED_XML;
    if (xp_is(c, "PartNumber")) {
      out->number = xp_int(c, KS_S3_MAX_PARTS);
    } else if (xp_is(c, "ETag") && out->etag == NULL) {
      out->etag = xp_text(c);
      if (out->etag == NULL)
        return KS_S3_INTERNAL_ERROR;
    }
  }
  return out->number > 0 && out->etag && out->etag[0] ? KS_S3_OK
                                                      : KS_S3_MALFORMED_XML;
}

ks_s3_code_t ks_s3_xml_parse_complete(const void *body, size_t len,
                                      ks_s3_complete_req_t *out)
{
  ks_s3_code_t code;
  memset(out, 0, sizeof(*out));
  xmlDocPtr doc = xp_read(body, len, "CompleteMultipartUpload", &code);
  if (doc == NULL)
    return code;
  const xmlNode *root = xmlDocGetRootElement(doc);
  size_t n = 0;
  for (const xmlNode *c = root->children; c; c = c->next)
    n += xp_is(c, "Part");
  code = KS_S3_MALFORMED_XML;
  if (n == 0 || n > KS_S3_MAX_PARTS)
    goto out;
  code = KS_S3_INTERNAL_ERROR;
  if ((out->parts = calloc(n, sizeof(*out->parts))) == NULL)
    goto out;
  code = KS_S3_OK;
  for (const xmlNode *c = root->children; c && code == KS_S3_OK; c = c->next)
    if (xp_stray(c))
      code = KS_S3_MALFORMED_XML;
    else if (xp_is(c, "Part"))
      code = xp_part(c, &out->parts[out->nparts++]);
out:
  xmlFreeDoc(doc);
  if (code != KS_S3_OK)
    ks_s3_complete_req_free(out);
  return code;
}

void ks_s3_complete_req_free(ks_s3_complete_req_t *r)
{
  for (size_t i = 0; i < r->nparts; i++)
    free(r->parts[i].etag);
  free(r->parts);
  memset(r, 0, sizeof(*r));
}

static ks_s3_code_t xp_object(const xmlNode *obj, char **key)
{
  for (const xmlNode *c = obj->children; c; c = c->next) {
    if (xp_stray(c))
      return KS_S3_MALFORMED_XML;
    if (xp_is(c, "VersionId"))
      return KS_S3_NOT_IMPLEMENTED;
    if (xp_is(c, "Key") && *key == NULL && (*key = xp_text(c)) == NULL)
      return KS_S3_INTERNAL_ERROR;
  }
  if (*key == NULL)
    return KS_S3_MALFORMED_XML;
  if ((*key)[0] == '\0')
    return KS_S3_USER_KEY_MUST_BE_SPECIFIED;
  return strlen(*key) > KS_S3_MAX_KEY_LEN ? KS_S3_KEY_TOO_LONG : KS_S3_OK;
}

static ks_s3_code_t xp_quiet(const xmlNode *n, bool *quiet)
{
  char *s = xp_text(n);
  if (s == NULL)
    return KS_S3_INTERNAL_ERROR;
  ks_s3_code_t code = KS_S3_OK;
  if (strcmp(s, "true") == 0)
    *quiet = true;
  else if (strcmp(s, "false") == 0)
    *quiet = false;
  else
    code = KS_S3_MALFORMED_XML;
  free(s);
  return code;
}

ks_s3_code_t ks_s3_xml_parse_delete(const void *body, size_t len,
                                    ks_s3_delete_req_t *out)
{
  ks_s3_code_t code;
  memset(out, 0, sizeof(*out));
  xmlDocPtr doc = xp_read(body, len, "Delete", &code);
  if (doc == NULL)
    return code;
  const xmlNode *root = xmlDocGetRootElement(doc);
  size_t n = 0;
  for (const xmlNode *c = root->children; c; c = c->next)
    n += xp_is(c, "Object");
  code = KS_S3_MALFORMED_XML;
  if (n == 0 || n > KS_S3_MAX_DELETE)
    goto out;
  code = KS_S3_INTERNAL_ERROR;
  if ((out->keys = calloc(n, sizeof(char *))) == NULL)
    goto out;
  code = KS_S3_OK;
  for (const xmlNode *c = root->children; c && code == KS_S3_OK; c = c->next)
    if (xp_stray(c))
      code = KS_S3_MALFORMED_XML;
    else if (xp_is(c, "Quiet"))
      code = xp_quiet(c, &out->quiet);
    else if (xp_is(c, "Object"))
      code = xp_object(c, &out->keys[out->nkeys++]);
out:
  xmlFreeDoc(doc);
  if (code != KS_S3_OK)
    ks_s3_delete_req_free(out);
  return code;
}

void ks_s3_delete_req_free(ks_s3_delete_req_t *r)
{
  for (size_t i = 0; i < r->nkeys; i++)
    free(r->keys[i]);
  free(r->keys);
  memset(r, 0, sizeof(*r));
}

static bool xp_blank(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return false;
  return true;
}

ks_s3_code_t ks_s3_xml_parse_create_bucket(const void *body, size_t len,
                                           char **region)
{
  ks_s3_code_t code;
  *region = NULL;
  if (xp_blank(body, len))
    return KS_S3_OK;
  xmlDocPtr doc = xp_read(body, len, "CreateBucketConfiguration", &code);
  if (doc == NULL)
    return code;
  const xmlNode *root = xmlDocGetRootElement(doc);
  for (const xmlNode *c = root->children; c && code == KS_S3_OK; c = c->next) {
    if (xp_stray(c) || (c->type == XML_ELEMENT_NODE &&
                        (!xp_is(c, "LocationConstraint") || *region))) {
      code = KS_S3_MALFORMED_XML;
    } else if (xp_is(c, "LocationConstraint")) {
      *region = xp_text(c);
      code = *region ? KS_S3_OK : KS_S3_INTERNAL_ERROR;
    }
  }
  xmlFreeDoc(doc);
  if (code != KS_S3_OK || (*region && (*region)[0] == '\0')) {
    free(*region);
    *region = NULL;
  }
  return code;
}
