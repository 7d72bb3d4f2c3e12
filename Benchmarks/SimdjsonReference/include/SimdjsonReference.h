#pragma once
#include <stddef.h>
// Filled in by the decoder work.
