// libxml2 for BankFormats. Debian's libxml2 is built with ICU, so libxml/encoding.h would pull in
// the system ICU headers (/usr/include/unicode); a Swift module that also imports Foundation sees
// Foundation's own copy of those headers, and clang refuses the two different `UErrorCode`
// definitions ("has different definitions in different modules", a build that fails at random
// depending on module build order). We never touch libxml2's ICU converter fields, so the module
// is imported without them. The library itself is unchanged.
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/xmlreader.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
