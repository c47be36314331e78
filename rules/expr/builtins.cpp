#include "rules/expr/builtins.h"

namespace vigil::expr::detail {
namespace {

using h = value_hint;
constexpr builtin_info table[] = {
    {"any", builtin::any, 2, 2, true, h::boolean},
    {"all", builtin::all, 2, 2, true, h::boolean},
    {"none", builtin::none_, 2, 2, true, h::boolean},
    {"one", builtin::one, 2, 2, true, h::boolean},
    {"filter", builtin::filter, 2, 2, true, h::list},
    {"map", builtin::map, 2, 2, true, h::list},
    {"count", builtin::count, 1, 2, true, h::integer},
    {"len", builtin::len, 1, 1, false, h::integer},
    {"upper", builtin::upper, 1, 1, false, h::string},
    {"lower", builtin::lower, 1, 1, false, h::string},
    {"trim", builtin::trim, 1, 2, false, h::string},
    {"trimPrefix", builtin::trim_prefix, 2, 2, false, h::string},
    {"trimSuffix", builtin::trim_suffix, 2, 2, false, h::string},
    {"hasPrefix", builtin::has_prefix, 2, 2, false, h::boolean},
    {"hasSuffix", builtin::has_suffix, 2, 2, false, h::boolean},
    {"indexOf", builtin::index_of, 2, 2, false, h::integer},
    {"int", builtin::to_int, 1, 1, false, h::integer},
    {"float", builtin::to_float, 1, 1, false, h::floating},
    {"string", builtin::to_string, 1, 1, false, h::string},
    {"type", builtin::type, 1, 1, false, h::string},
    {"first", builtin::first, 1, 1, false, h::any},
    {"last", builtin::last, 1, 1, false, h::any},
    {"get", builtin::get, 2, 2, false, h::any},
    {"abs", builtin::abs, 1, 1, false, h::any},
    {"split", builtin::split, 2, 3, false, h::list},
    {"replace", builtin::replace, 3, 3, false, h::string},
    {"keys", builtin::keys, 1, 1, false, h::list},
    {"values", builtin::values, 1, 1, false, h::list},
    {"toJSON", builtin::to_json, 1, 1, false, h::string},
    {"Upper", builtin::cs_upper, 1, 1, false, h::string},
    {"Lower", builtin::cs_lower, 1, 1, false, h::string},
    {"TrimSpace", builtin::cs_trim_space, 1, 1, false, h::string},
    {"Trim", builtin::cs_trim, 2, 2, false, h::string},
    {"TrimPrefix", builtin::cs_trim_prefix, 2, 2, false, h::string},
    {"TrimSuffix", builtin::cs_trim_suffix, 2, 2, false, h::string},
    {"Index", builtin::cs_index, 2, 2, false, h::integer},
    {"IsIPV4", builtin::cs_is_ipv4, 1, 1, false, h::boolean},
    {"IsIPV6", builtin::cs_is_ipv6, 1, 1, false, h::boolean},
    {"IsIP", builtin::cs_is_ip, 1, 1, false, h::boolean},
    {"ToString", builtin::cs_to_string, 1, 1, false, h::string},
    {"Atof", builtin::cs_atof, 1, 1, false, h::floating},
    {"KeyExists", builtin::cs_key_exists, 2, 2, false, h::boolean},
    {"Split", builtin::cs_split, 2, 2, false, h::list},
    {"SplitN", builtin::cs_split_n, 3, 3, false, h::list},
    {"SplitAfter", builtin::cs_split_after, 2, 2, false, h::list},
    {"SplitAfterN", builtin::cs_split_after_n, 3, 3, false, h::list},
    {"Join", builtin::cs_join, 2, 2, false, h::string},
    {"Replace", builtin::cs_replace, 4, 4, false, h::string},
    {"ReplaceAll", builtin::cs_replace_all, 3, 3, false, h::string},
    {"Fields", builtin::cs_fields, 1, 1, false, h::list},
    {"TrimLeft", builtin::cs_trim_left, 2, 2, false, h::string},
    {"TrimRight", builtin::cs_trim_right, 2, 2, false, h::string},
    {"IndexAny", builtin::cs_index_any, 2, 2, false, h::integer},
    {"Get", builtin::cs_get, 2, 2, false, h::string},
    {"IpInRange", builtin::cs_ip_in_range, 2, 2, false, h::boolean},
    {"IpToRange", builtin::cs_ip_to_range, 2, 2, false, h::string},
    {"B64Decode", builtin::cs_b64_decode, 1, 1, false, h::string},
    {"PathUnescape", builtin::cs_path_unescape, 1, 1, false, h::string},
    {"QueryUnescape", builtin::cs_query_unescape, 1, 1, false, h::string},
    {"PathEscape", builtin::cs_path_escape, 1, 1, false, h::string},
    {"QueryEscape", builtin::cs_query_escape, 1, 1, false, h::string},
    {"Match", builtin::cs_match, 2, 2, false, h::boolean},
    {"FloatApproxEqual", builtin::cs_float_approx_equal, 2, 2, false, h::boolean},
    {"Sprintf", builtin::cs_sprintf, 1, 16, false, h::string},
    {"GetDecisionsCount", builtin::cs_decisions_count, 1, 1, false, h::integer},
    {"GetDecisionsSinceCount", builtin::cs_decisions_since_count, 2, 2, false, h::integer},
};

constexpr std::string_view unsupported[] = {
    // expr builtins not implemented
    "find", "findIndex", "findLast", "findLastIndex", "sum", "groupBy", "sortBy", "reduce",
    "splitAfter", "repeat", "join", "lastIndexOf", "fromJSON",
    "toBase64", "fromBase64", "now", "duration", "date", "max", "min", "mean", "median", "round",
    "ceil", "floor", "toPairs", "fromPairs", "concat", "flatten", "uniq", "sort", "bitand", "bitor",
    "bitxor", "bitnand", "bitnot", "bitshl", "bitshr", "bitushr", "take", "timezone",
    // CrowdSec helpers (§13) not implemented
    "Distance", "LookupHost", "File", "RegexpInFile", "ParseUri", "JsonExtract", "JsonExtractUnescape",
    "JsonExtractLib", "JsonExtractSlice", "JsonExtractObject", "ToJsonString", "UnmarshalJSON",
    "ParseKV", "XMLGetAttributeValue", "XMLGetNodeValue", "TimeNow", "ParseUnix", "GetFromStash",
    "SetInStash", "LogInfo", "Hostname", "CrowdsecCTI", "Flatten", "Distinct", "FlattenDistinct",
    "LibInjectionIsSQLI", "LibInjectionIsXSS", "GetActiveDecisionsCount", "GetActiveDecisionsTimeLeft",
    "GeoIPEnrich", "GeoIPASNEnrich", "GeoIPRangeEnrich", "ParseQuery", "ExtractQueryParam", "JA4H",
    "AverageInterval", "MedianInterval", "FileMap", "LookupFile", "ParseKVLax", "IPToCountry",
    "MatchKnownBot", "HTTPGet", "HTTPHead", "HTTPPost", "HTTPRequest",
};

}  // namespace

const builtin_info* find_builtin(std::string_view name) noexcept {
  for (const auto& b : table) {
    if (b.name == name) {
      return &b;
    }
  }
  return nullptr;
}

bool is_known_unsupported(std::string_view name) noexcept {
  for (auto n : unsupported) {
    if (n == name) {
      return true;
    }
  }
  return false;
}

}  // namespace vigil::expr::detail
