// SPDX-License-Identifier: GPL-2.0
// What libbpf said about a program it failed to load, for the one-line
// error: libbpf prints the reason (the verifier's log) but returns only an
// errno.
#include "libbpf_handles.h"

#include <cstdio>
#include <string_view>
#include <vector>

namespace qwatch {
namespace {

std::string &recorded_warnings()
{
  static std::string warnings;
  return warnings;
}

// The last @count non-empty lines of @text, joined by "; ".
std::string last_lines(std::string_view text, size_t count)
{
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty())
      lines.push_back(line);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  std::string joined;
  for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); i++)
    joined += (joined.empty() ? "" : "; ") + std::string(lines[i]);
  return joined;
}

bool verbose_libbpf = false;

int print_libbpf(libbpf_print_level level, const char *format, va_list args)
{
  if (level == LIBBPF_WARN) {
    va_list copy;
    va_copy(copy, args);
    record_libbpf_warning(format, copy);
    va_end(copy);
  }
  return verbose_libbpf ? std::vfprintf(stderr, format, args) : 0;
}

}  // namespace

void print_libbpf_messages(bool verbose)
{
  verbose_libbpf = verbose;
  libbpf_set_print(print_libbpf);
}

void record_libbpf_warning(const char *format, va_list args) noexcept
{
  try {
    va_list copy;
    va_copy(copy, args);
    int length = std::vsnprintf(nullptr, 0, format, copy);
    va_end(copy);
    if (length <= 0)
      return;
    std::string text(static_cast<size_t>(length) + 1, '\0');
    std::vsnprintf(text.data(), text.size(), format, args);
    text.resize(static_cast<size_t>(length));
    recorded_warnings() += text;
  } catch (...) {
    // Out of memory: the failure is still reported, without its reason.
  }
}

std::string take_load_failure()
{
  // libbpf 1.x: "prog 'NAME': BPF program load failed: ERR", then
  // "prog 'NAME': -- BEGIN PROG LOAD LOG --\nLOG-- END PROG LOAD LOG --".
  constexpr std::string_view kFailed = "': BPF program load failed";
  constexpr std::string_view kName = "prog '";
  constexpr std::string_view kBegin = "-- BEGIN PROG LOAD LOG --\n";
  constexpr std::string_view kEnd = "-- END PROG LOAD LOG --";
  std::string log;
  log.swap(recorded_warnings());
  size_t failed = log.rfind(kFailed);
  if (failed == std::string::npos)
    return "";
  size_t name = log.rfind(kName, failed);
  if (name == std::string::npos)
    return "";
  name += kName.size();
  std::string failure = "program " + log.substr(name, failed - name) + " rejected";
  size_t begin = log.find(kBegin, failed);
  size_t end = begin == std::string::npos ? begin : log.find(kEnd, begin);
  if (end == std::string::npos)
    return failure;
  std::string_view verifier(log);
  verifier = verifier.substr(begin + kBegin.size(), end - begin - kBegin.size());
  // The verdict comes last, before the "processed N insns" statistics.
  size_t statistics = verifier.rfind("\nprocessed ");
  if (statistics != std::string_view::npos)
    verifier = verifier.substr(0, statistics);
  std::string reason = last_lines(verifier, 2);
  return reason.empty() ? failure : failure + " by the verifier: " + reason;
}

}  // namespace qwatch
