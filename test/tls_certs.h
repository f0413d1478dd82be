/* Test certificates made at test time with OpenSSL (test/tls_certs.c): a
 * CA, a server certificate it signs for "localhost" and 127.0.0.1, and a
 * second CA that signed nothing here, as PEM files in a temporary
 * directory. */
#ifndef PACT_TEST_TLS_CERTS_H
#define PACT_TEST_TLS_CERTS_H

struct t_certs {
    char dir[64];
    char ca[96];       /* the CA's certificate */
    char cert[96];     /* the server's certificate */
    char key[96];      /* the server's private key */
    char other_ca[96]; /* a CA that signed nothing here */
};

/* Make them (aborts the test on failure). */
void t_certs_make(struct t_certs *c);
/* Remove the files and the directory. */
void t_certs_remove(struct t_certs *c);

#endif
