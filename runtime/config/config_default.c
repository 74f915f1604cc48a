/* config_default.c - the configuration compiled into the binary, used when
 * there is no /etc/berth: `berth daemon` works on a bare device. */
#include "runtime/config/config.h"

/* It goes through the same parser and checks as /etc/berth/berth.ini. */
const char config_default_ini[] =
	"; berth's embedded default configuration\n"
	"[network default]\n"
	"bridge     = berth0\n"
	"subnet     = 10.88.0.0/16\n"
	"gateway    = 10.88.0.1\n"
	"subnet6    = fd88::/64\n"
	"masquerade = yes\n"
	"\n"
	"[dns]\n"
	"domain = berth.internal\n"
	"ttl    = 10\n"
	"cache  = 4096\n"
	"host   = yes\n";
