/* Test certificates (tls_certs.h): EC P-256 keys, X.509 v3 certificates
 * valid from an hour ago for a day, written as PEM into a mkdtemp
 * directory. Made with OpenSSL's API, so the tests need no openssl
 * command. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <check.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls_certs.h"

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    ck_assert_ptr_nonnull(kc);
    ck_assert_int_eq(EVP_PKEY_keygen_init(kc), 1);
    ck_assert_int_eq(
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1), 1);
    ck_assert_int_eq(EVP_PKEY_keygen(kc, &k), 1);
    EVP_PKEY_CTX_free(kc);
    return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    ck_assert_ptr_nonnull(ext);
    ck_assert_int_eq(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate of @p key named @p cn, signed by @p ca_key (@p ca: NULL
 * for a self-signed CA). */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *ca_key,
                      long serial)
{
    X509 *c = X509_new();
    ck_assert_ptr_nonnull(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_set_pubkey(c, key);
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, ca ? X509_get_subject_name(ca) : name);
    X509 *issuer = ca ? ca : c;
    if (!ca) {
        add_ext(c, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(c, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        add_ext(c, issuer, NID_ext_key_usage, "serverAuth");
    }
    add_ext(c, issuer, NID_subject_key_identifier, "hash");
    ck_assert_int_gt(X509_sign(c, ca_key, EVP_sha256()), 0);
    return c;
}

static void write_cert(const char *path, X509 *c)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, c), 1);
    fclose(f);
}

void t_certs_make(struct t_certs *c)
{
    snprintf(c->dir, sizeof c->dir, "/tmp/pact-tls.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(c->dir));
    snprintf(c->ca, sizeof c->ca, "%s/ca.pem", c->dir);
    snprintf(c->cert, sizeof c->cert, "%s/server.pem", c->dir);
    snprintf(c->key, sizeof c->key, "%s/server.key", c->dir);
    snprintf(c->other_ca, sizeof c->other_ca, "%s/other-ca.pem", c->dir);
    EVP_PKEY *ca_key = new_key(), *key = new_key(), *other_key = new_key();
    X509 *ca = new_cert(ca_key, "pact test CA", NULL, ca_key, 1);
    X509 *cert = new_cert(key, "localhost", ca, ca_key, 2);
    X509 *other = new_cert(other_key, "pact other CA", NULL, other_key, 3);
    write_cert(c->ca, ca);
    write_cert(c->cert, cert);
    write_cert(c->other_ca, other);
    FILE *f = fopen(c->key, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL),
                     1);
    fclose(f);
    X509_free(ca);
    X509_free(cert);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other_key);
}

void t_certs_remove(struct t_certs *c)
{
    unlink(c->ca);
    unlink(c->cert);
    unlink(c->key);
    unlink(c->other_ca);
    rmdir(c->dir);
}
