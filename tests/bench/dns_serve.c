/* dns_serve.c - the DNS test harness (tests/helpers/dns_serve.c), built
 * optimised and without sanitizers for tests/bench/dns.sh. */
#include "tests/helpers/dns_serve.c"
