#include "SimdjsonReference.h"
