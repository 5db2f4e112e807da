/*
 * test_s3_xml.c — S3 XML (ks/s3_xml.h): the error table; every response
 * writer produces a well-formed document (re-read with libxml2) with AWS's
 * element names and shapes, including encoding-type=url listings and
 * refusal of text XML cannot carry; the request parsers accept what SDKs
 * send (with and without the S3 namespace) and refuse malformed,
 * oversized, DOCTYPE/entity-expansion and external-entity bodies.
 */
#include "ks/s3_xml.h"

#include "ks/err.h"

#include <errno.h>
#include <libxml/parser.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

/* out as a NUL-terminated string, checked to be well-formed XML. */
static const char *t_doc(ks_buf_t *b)
{
  assert_int_equal(ks_buf_append(b, "", 1), 0);
  b->len--;
  xmlDocPtr d = xmlReadMemory((const char *)b->data, (int)b->len, "t.xml", NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR);
  assert_non_null(d);
  xmlFreeDoc(d);
  return (const char *)b->data;
}

static void t_has(const char *doc, const char *needle)
{
  if (strstr(doc, needle) == NULL)
    fail_msg("missing %s in %s", needle, doc);
}

static void test_error_table(void **state)
{
  (void)state;
  assert_string_equal(ks_s3_code_name(KS_S3_NO_SUCH_KEY), "NoSuchKey");
  assert_int_equal(ks_s3_code_status(KS_S3_NO_SUCH_KEY), 404);
  assert_int_equal(ks_s3_code_status(KS_S3_INVALID_RANGE), 416);
  assert_int_equal(ks_s3_code_status(KS_S3_NOT_MODIFIED), 304);
  assert_int_equal(ks_s3_code_status(KS_S3_PRECONDITION_FAILED), 412);
  assert_int_equal(ks_s3_code_status(KS_S3_SIGNATURE_DOES_NOT_MATCH), 403);
  assert_int_equal(ks_s3_code_status(KS_S3_NOT_IMPLEMENTED), 501);
  assert_int_equal(ks_s3_code_status(KS_S3_BUCKET_NOT_EMPTY), 409);
  assert_int_equal(ks_s3_code_status(KS_S3_OK), 200);
  assert_string_equal(ks_s3_code_name((ks_s3_code_t)9999), "InternalError");
  for (int c = 1; c < KS_S3_CODE_COUNT; c++) {
    assert_non_null(ks_s3_code_name((ks_s3_code_t)c));
    assert_true(strlen(ks_s3_code_message((ks_s3_code_t)c)) > 0);
    assert_true(ks_s3_code_status((ks_s3_code_t)c) >= 300);
  }
}

static void test_error_body(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(
      ks_s3_xml_error(&b, KS_S3_NO_SUCH_KEY, NULL, "/bkt/a<b&c", "req-1"), 0);
  assert_string_equal(
      t_doc(&b),
      "<?xml version=\"1.0\" "
      "encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The specified key does not exist.</Message><Resource>/bkt/"
      "a&lt;b&amp;c</Resource><RequestId>req-1</RequestId></Error>\n");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_error(&b, KS_S3_ACCESS_DENIED,
                                   "Request has "
                                   "expired",
                                   NULL, NULL),
                   0);
  t_has(t_doc(&b), "<Message>Request has expired</Message></Error>");
  ks_buf_free(&b);
}

static void test_write_buckets_and_small(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  ks_s3_owner_t o = {"owner-id", "dev"};
  ks_s3_bucket_entry_t bk[] = {{"alpha", 1369353600}, {"beta", 0}};
  assert_int_equal(ks_s3_xml_write_buckets(&b, &o, bk, 2), 0);
  const char *d = t_doc(&b);
  t_has(d, "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/"
           "2006-03-01/\"><Owner><ID>owner-id</ID><DisplayName>dev"
           "</DisplayName></Owner><Buckets><Bucket><Name>alpha</Name>"
           "<CreationDate>2013-05-24T00:00:00.000Z</CreationDate></Bucket>");
  t_has(d, "<CreationDate>1970-01-01T00:00:00.000Z</CreationDate>");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_write_initiate(&b, "bkt", "a b", "up-1"), 0);
  t_has(t_doc(&b), "<Bucket>bkt</Bucket><Key>a b</Key><UploadId>up-1"
                   "</UploadId></InitiateMultipartUploadResult>");
  ks_buf_reset(&b);
  assert_int_equal(
      ks_s3_xml_write_complete(&b, "http://h/bkt/k", "bkt", "k", "\"abc-2\""),
      0);
  t_has(t_doc(&b), "<ETag>&quot;abc-2&quot;</ETag>");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_write_copy(&b, false, "\"e\"", 1369353600), 0);
  t_has(t_doc(&b), "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/"
                   "2006-03-01/\"><LastModified>2013-05-24T00:00:00.000Z"
                   "</LastModified><ETag>&quot;e&quot;</ETag>");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_write_copy(&b, true, "\"e\"", 0), 0);
  t_has(t_doc(&b), "<CopyPartResult");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_write_location(&b, "us-east-1"), 0);
  t_has(t_doc(&b), "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/"
                   "2006-03-01/\"/>");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_write_location(&b, "eu-west-1"), 0);
  t_has(t_doc(&b), ">eu-west-1</LocationConstraint>");
  ks_buf_free(&b);
}

static void test_write_list(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  ks_s3_object_entry_t objs[] = {
      {"a b/c+d.txt", "\"e1\"", NULL, 5, 0},
      {"\xc3\xa9t\xc3\xa9", "\"e2\"", "STANDARD", 0, 1369353600}};
  const char *prefixes[] = {"dir one/"};
  ks_s3_owner_t o = {"id", NULL};
  ks_s3_list_result_t r = {.bucket = "bkt",
                           .prefix = "a b",
                           .delimiter = "/",
                           .next_continuation_token = "tok",
                           .start_after = "a a",
                           .contents = objs,
                           .common_prefixes = prefixes,
                           .owner = &o,
                           .ncontents = 2,
                           .nprefixes = 1,
                           .max_keys = 1000,
                           .v2 = true,
                           .is_truncated = true,
                           .encoding_url = true};
  assert_int_equal(ks_s3_xml_write_list(&b, &r), 0);
  const char *d = t_doc(&b);
  t_has(d, "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/"
           "\"><Name>bkt</Name><Prefix>a+b</Prefix>");
  t_has(d, "<NextContinuationToken>tok</NextContinuationToken>");
  t_has(d, "<StartAfter>a+a</StartAfter><KeyCount>3</KeyCount>");
  t_has(d, "<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true"
           "</IsTruncated><EncodingType>url</EncodingType>");
  t_has(d, "<Contents><Key>a+b/c%2Bd.txt</Key><LastModified>1970-01-01T00:00:"
           "00.000Z</LastModified><ETag>&quot;e1&quot;</ETag><Size>5</Size>"
           "<Owner><ID>id</ID></Owner><StorageClass>STANDARD</StorageClass>"
           "</Contents>");
  t_has(d, "<Key>%C3%A9t%C3%A9</Key>");
  t_has(d, "<CommonPrefixes><Prefix>dir+one/</Prefix></CommonPrefixes>");
  /* v1, no encoding; a key with a control character is refused */
  ks_buf_reset(&b);
  r.v2 = false;
  r.encoding_url = false;
  r.marker = "m";
  r.next_marker = "n";
  assert_int_equal(ks_s3_xml_write_list(&b, &r), 0);
  d = t_doc(&b);
  t_has(d, "<Prefix>a b</Prefix><Marker>m</Marker><NextMarker>n</NextMarker>");
  t_has(d, "<Key>\xc3\xa9t\xc3\xa9</Key>");
  assert_null(strstr(d, "KeyCount"));
  ks_buf_reset(&b);
  objs[0].key = "bad\x01key";
  assert_int_equal(ks_s3_xml_write_list(&b, &r), KS_EPARSE);
  assert_int_equal(b.len, 0);
  r.encoding_url = true; /* percent-encoded, it can be listed */
  assert_int_equal(ks_s3_xml_write_list(&b, &r), 0);
  t_has(t_doc(&b), "<Key>bad%01key</Key>");
  ks_buf_reset(&b);
  objs[0].key = "bad\xffkey";
  r.encoding_url = false;
  assert_int_equal(ks_s3_xml_write_list(&b, &r), KS_EPARSE);
  ks_buf_free(&b);
}

static void test_write_multipart_lists(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  ks_s3_owner_t o = {"id", "dev"};
  ks_s3_part_entry_t parts[] = {{"\"p1\"", 5242880, 0, 1},
                                {"\"p2\"", 10, 0, 2}};
  ks_s3_parts_result_t pr = {"bkt", "k", "up", &o, parts, 2, 0, 2, 1000, false};
  assert_int_equal(ks_s3_xml_write_parts(&b, &pr), 0);
  const char *d = t_doc(&b);
  t_has(d, "<Initiator><ID>id</ID><DisplayName>dev</DisplayName></Initiator>");
  t_has(d, "<NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>1000"
           "</MaxParts><IsTruncated>false</IsTruncated><Part><PartNumber>1"
           "</PartNumber>");
  t_has(d, "<Size>5242880</Size></Part>");
  ks_buf_reset(&b);
  ks_s3_upload_entry_t up[] = {{"a b", "u1", 1369353600}};
  const char *cp[] = {"x/"};
  ks_s3_uploads_result_t ur = {.bucket = "bkt",
                               .prefix = "",
                               .delimiter = "/",
                               .uploads = up,
                               .common_prefixes = cp,
                               .owner = &o,
                               .nuploads = 1,
                               .nprefixes = 1,
                               .max_uploads = 1000,
                               .encoding_url = true};
  assert_int_equal(ks_s3_xml_write_uploads(&b, &ur), 0);
  d = t_doc(&b);
  t_has(d, "<ListMultipartUploadsResult");
  t_has(d, "<Upload><Key>a+b</Key><UploadId>u1</UploadId>");
  t_has(d, "<Initiated>2013-05-24T00:00:00.000Z</Initiated></Upload>");
  t_has(d, "<CommonPrefixes><Prefix>x/</Prefix></CommonPrefixes>");
  ks_buf_reset(&b);
  ks_s3_delete_entry_t de[] = {{"gone", KS_S3_OK, NULL},
                               {"locked", KS_S3_ACCESS_DENIED, NULL}};
  assert_int_equal(ks_s3_xml_write_delete(&b, false, de, 2), 0);
  d = t_doc(&b);
  t_has(d, "<Deleted><Key>gone</Key></Deleted><Error><Key>locked</Key><Code>"
           "AccessDenied</Code><Message>Access Denied</Message></Error>");
  ks_buf_reset(&b);
  assert_int_equal(ks_s3_xml_write_delete(&b, true, de, 2), 0);
  d = t_doc(&b);
  assert_null(strstr(d, "<Deleted>"));
  t_has(d, "<Error><Key>locked</Key>");
  ks_buf_free(&b);
}

#define NS " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static ks_s3_code_t t_complete(const char *body, ks_s3_complete_req_t *r)
{
  return ks_s3_xml_parse_complete(body, strlen(body), r);
}

static void test_parse_complete(void **state)
{
  (void)state;
  ks_s3_complete_req_t r;
  assert_int_equal(
      t_complete("<CompleteMultipartUpload" NS "><Part><PartNumber>1"
                 "</PartNumber><ETag>\"a1\"</ETag></Part>\n <Part><ETag>b2"
                 "</ETag><PartNumber> 2 </PartNumber><ChecksumCRC32>x"
                 "</ChecksumCRC32></Part></CompleteMultipartUpload>",
                 &r),
      KS_S3_OK);
  assert_int_equal(r.nparts, 2);
  assert_int_equal(r.parts[0].number, 1);
  assert_string_equal(r.parts[0].etag, "\"a1\"");
  assert_int_equal(r.parts[1].number, 2);
  assert_string_equal(r.parts[1].etag, "b2");
  ks_s3_complete_req_free(&r);
  ks_s3_complete_req_free(&r); /* idempotent */
  static const char *const bad[] = {
      "",
      "not xml",
      "<CompleteMultipartUpload/>",
      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
      "</CompleteMultipartUpload>",
      "<CompleteMultipartUpload><Part><ETag>x</ETag></Part>"
      "</CompleteMultipartUpload>",
      "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag>"
      "</Part></CompleteMultipartUpload>",
      "<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>x"
      "</ETag></Part></CompleteMultipartUpload>",
      "<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>x"
      "</ETag></Part></CompleteMultipartUpload>",
      "<CompleteMultipartUpload><Part><PartNumber>1x</PartNumber><ETag>x"
      "</ETag></Part></CompleteMultipartUpload>",
      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x"
      "</ETag></Part>",
      "<Complete><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>"
      "</Complete>",
      "<CompleteMultipartUpload>junk<Part><PartNumber>1</PartNumber><ETag>x"
      "</ETag></Part></CompleteMultipartUpload>",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(t_complete(bad[i], &r), KS_S3_MALFORMED_XML);
    assert_null(r.parts);
  }
}

static void test_parse_complete_limits(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  ks_s3_complete_req_t r;
  assert_int_equal(ks_buf_append_str(&b, "<CompleteMultipartUpload>"), 0);
  for (int i = 1; i <= KS_S3_MAX_PARTS; i++)
    assert_int_equal(ks_buf_printf(&b,
                                   "<Part><PartNumber>%d</PartNumber>"
                                   "<ETag>\"e\"</ETag></Part>",
                                   i),
                     0);
  size_t body_len = b.len;
  assert_int_equal(ks_buf_append_str(&b, "</CompleteMultipartUpload>"), 0);
  assert_int_equal(ks_s3_xml_parse_complete(b.data, b.len, &r), KS_S3_OK);
  assert_int_equal(r.nparts, KS_S3_MAX_PARTS);
  ks_s3_complete_req_free(&r);
  b.len = body_len; /* one part too many */
  assert_int_equal(ks_buf_append_str(&b, "<Part><PartNumber>1</PartNumber>"
                                         "<ETag>e</ETag></Part>"
                                         "</CompleteMultipartUpload>"),
                   0);
  assert_int_equal(ks_s3_xml_parse_complete(b.data, b.len, &r),
                   KS_S3_MALFORMED_XML);
  /* oversized bodies are refused before parsing */
  assert_int_equal(ks_s3_xml_parse_complete(b.data, KS_S3_XML_MAX_BODY + 1, &r),
                   KS_S3_MAX_MESSAGE_LENGTH_EXCEEDED);
  ks_buf_free(&b);
}

static void test_parse_hostile(void **state)
{
  (void)state;
  static const char *const hostile[] = {
      /* billion laughs */
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
      "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
      "<Delete><Object><Key>&lol3;</Key></Object></Delete>",
      /* external entity */
      "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<Delete><Object><Key>&x;</Key></Object></Delete>",
      /* undeclared entity */
      "<Delete><Object><Key>&x;</Key></Object></Delete>",
      /* DOCTYPE alone */
      "<!DOCTYPE Delete><Delete><Object><Key>k</Key></Object></Delete>",
  };
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    ks_s3_delete_req_t r;
    assert_int_equal(ks_s3_xml_parse_delete(hostile[i], strlen(hostile[i]), &r),
                     KS_S3_MALFORMED_XML);
    assert_null(r.keys);
  }
  /* deep nesting is bounded by libxml2 and refused */
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_buf_append_str(&b, "<Delete>"), 0);
  for (int i = 0; i < 100000; i++)
    assert_int_equal(ks_buf_append_str(&b, "<a>"), 0);
  ks_s3_delete_req_t r;
  assert_int_equal(ks_s3_xml_parse_delete(b.data, b.len, &r),
                   KS_S3_MALFORMED_XML);
  ks_buf_free(&b);
}

static ks_s3_code_t t_delete(const char *body, ks_s3_delete_req_t *r)
{
  return ks_s3_xml_parse_delete(body, strlen(body), r);
}

static void test_parse_delete(void **state)
{
  (void)state;
  ks_s3_delete_req_t r;
  assert_int_equal(t_delete("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                            "<Delete" NS "><Quiet>true</Quiet><Object><Key> a "
                            "&amp; b </Key></Object><Object><Key>\xc3\xa9/x"
                            "</Key></Object></Delete>",
                            &r),
                   KS_S3_OK);
  assert_true(r.quiet);
  assert_int_equal(r.nkeys, 2);
  assert_string_equal(r.keys[0], " a & b ");
  assert_string_equal(r.keys[1], "\xc3\xa9/x");
  ks_s3_delete_req_free(&r);
  assert_int_equal(
      t_delete("<Delete><Object><Key>k</Key></Object></Delete>", &r), KS_S3_OK);
  assert_false(r.quiet);
  ks_s3_delete_req_free(&r);
  static const struct {
    const char *body;
    ks_s3_code_t code;
  } bad[] = {
      {"<Delete></Delete>", KS_S3_MALFORMED_XML},
      {"<Delete><Object></Object></Delete>", KS_S3_MALFORMED_XML},
      {"<Delete><Object><Key></Key></Object></Delete>",
       KS_S3_USER_KEY_MUST_BE_SPECIFIED},
      {"<Delete><Object><Key>k</Key><VersionId>v</VersionId></Object>"
       "</Delete>",
       KS_S3_NOT_IMPLEMENTED},
      {"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
       KS_S3_MALFORMED_XML},
      {"<Delete><Object><Key>k</Key></Object>", KS_S3_MALFORMED_XML},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(t_delete(bad[i].body, &r), bad[i].code);
    assert_null(r.keys);
  }
  /* 1000 objects pass, 1001 do not; a 1025-byte key is too long */
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_buf_append_str(&b, "<Delete>"), 0);
  for (int i = 0; i < KS_S3_MAX_DELETE; i++)
    assert_int_equal(ks_buf_printf(&b, "<Object><Key>k%d</Key></Object>", i),
                     0);
  size_t mark = b.len;
  assert_int_equal(ks_buf_append_str(&b, "</Delete>"), 0);
  assert_int_equal(ks_s3_xml_parse_delete(b.data, b.len, &r), KS_S3_OK);
  assert_int_equal(r.nkeys, KS_S3_MAX_DELETE);
  ks_s3_delete_req_free(&r);
  b.len = mark;
  assert_int_equal(
      ks_buf_append_str(&b, "<Object><Key>x</Key></Object></Delete>"), 0);
  assert_int_equal(ks_s3_xml_parse_delete(b.data, b.len, &r),
                   KS_S3_MALFORMED_XML);
  ks_buf_reset(&b);
  assert_int_equal(ks_buf_append_str(&b, "<Delete><Object><Key>"), 0);
  for (int i = 0; i < KS_S3_MAX_KEY_LEN + 1; i++)
    assert_int_equal(ks_buf_append(&b, "k", 1), 0);
  assert_int_equal(ks_buf_append_str(&b, "</Key></Object></Delete>"), 0);
  assert_int_equal(ks_s3_xml_parse_delete(b.data, b.len, &r),
                   KS_S3_KEY_TOO_LONG);
  ks_buf_free(&b);
}

static void test_parse_create_bucket(void **state)
{
  (void)state;
  char *region = NULL;
  assert_int_equal(ks_s3_xml_parse_create_bucket("", 0, &region), KS_S3_OK);
  assert_null(region);
  assert_int_equal(ks_s3_xml_parse_create_bucket(" \n", 2, &region), KS_S3_OK);
  const char *b = "<CreateBucketConfiguration" NS "><LocationConstraint>"
                  "eu-west-1</LocationConstraint></CreateBucketConfiguration>";
  assert_int_equal(ks_s3_xml_parse_create_bucket(b, strlen(b), &region),
                   KS_S3_OK);
  assert_string_equal(region, "eu-west-1");
  free(region);
  b = "<CreateBucketConfiguration/>";
  assert_int_equal(ks_s3_xml_parse_create_bucket(b, strlen(b), &region),
                   KS_S3_OK);
  assert_null(region);
  static const char *const bad[] = {
      "<CreateBucketConfiguration><Bucket/></CreateBucketConfiguration>",
      "<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
      "<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>",
      "<Other/>", "<CreateBucketConfiguration>"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(
        ks_s3_xml_parse_create_bucket(bad[i], strlen(bad[i]), &region),
        KS_S3_MALFORMED_XML);
    assert_null(region);
  }
}

int main(void)
{
  ks_s3_xml_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_table),
      cmocka_unit_test(test_error_body),
      cmocka_unit_test(test_write_buckets_and_small),
      cmocka_unit_test(test_write_list),
      cmocka_unit_test(test_write_multipart_lists),
      cmocka_unit_test(test_parse_complete),
      cmocka_unit_test(test_parse_complete_limits),
      cmocka_unit_test(test_parse_hostile),
      cmocka_unit_test(test_parse_delete),
      cmocka_unit_test(test_parse_create_bucket),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  xmlCleanupParser();
  return rc;
}
