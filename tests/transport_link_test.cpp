#include <doctest/doctest.h>
#include "transport/codec.h"
TEST_CASE("placeholder") {}
