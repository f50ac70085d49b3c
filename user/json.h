// SPDX-License-Identifier: GPL-2.0
// The one JSON writer of the reader: every JSON line qwatch prints (events,
// listeners, --stats) is built with it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace qwatch {

// Builds one JSON object; keys are ours, string values are escaped.
class JsonObject {
 public:
  JsonObject &number(std::string_view key, uint64_t value)
  {
    return raw(key, std::to_string(value));
  }
  JsonObject &string(std::string_view key, std::string_view value)
  {
    std::string quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\')
        quoted += '\\';
      if (static_cast<unsigned char>(c) < 0x20)
        continue;
      quoted += c;
    }
    return raw(key, quoted + "\"");
  }
  // A number with a fraction, to the thousandth (milliseconds to the
  // microsecond); negative values too.
  JsonObject &real(std::string_view key, double value)
  {
    char text[64];
    std::snprintf(text, sizeof(text), "%.3f", value);
    return raw(key, text);
  }
  JsonObject &null(std::string_view key) { return raw(key, "null"); }
  // An array of objects.
  JsonObject &objects(std::string_view key, const std::vector<JsonObject> &items)
  {
    std::string array = "[";
    for (const JsonObject &item : items) {
      if (array.size() > 1)
        array += ',';
      array += item.str();
    }
    return raw(key, array + "]");
  }
  JsonObject &boolean(std::string_view key, bool value)
  {
    return raw(key, value ? "true" : "false");
  }
  std::string str() const { return body_ + "}"; }

 private:
  JsonObject &raw(std::string_view key, const std::string &value)
  {
    body_ += body_.size() > 1 ? ",\"" : "\"";
    body_ += key;
    body_ += "\":";
    body_ += value;
    return *this;
  }
  std::string body_ = "{";
};

}  // namespace qwatch
