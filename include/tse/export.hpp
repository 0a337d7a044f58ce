#pragma once
// Visibility and version macros. The library is built with -fvisibility=hidden; TSE_API marks
// what a program linking tse::tse may use.
#define TSE_API __attribute__((visibility("default")))

#include "tse/version.hpp"
