// The Gemini API key the REST client sends: a fixed value, or one that can change while the
// process runs (a Kubernetes Secret mounted as a file and rotated, see api_key_file.h).
//
// Each upstream request reads the key once, when it starts, and keeps it to the end (headers
// are written once); requests started after a change send the new key. The key is never logged
// nor put into an error.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_API_KEY_H_
#define VISION_GATEWAY_SERVICE_GEMINI_API_KEY_H_

#include <memory>
#include <string>
#include <utility>

namespace vision_gateway::gemini {

// Something that knows the current key. Current() is thread-safe and cheap (no I/O).
class ApiKeySource {
 public:
  virtual ~ApiKeySource() = default;
  virtual std::string Current() const = 0;
};

// A key value or a source of keys. Converts implicitly from a string so that a fixed key reads
// naturally in options (`options.api_key = "..."`), but deliberately not back to one: code that
// needs the key must call Current() at the moment a request starts.
class ApiKey {
 public:
  ApiKey() = default;
  ApiKey(std::string fixed) : fixed_(std::move(fixed)) {}  // NOLINT(google-explicit-constructor)
  ApiKey(const char* fixed) : fixed_(fixed) {}              // NOLINT(google-explicit-constructor)
  ApiKey(std::shared_ptr<const ApiKeySource> source)        // NOLINT(google-explicit-constructor)
      : source_(std::move(source)) {}

  // The key for a request starting now.
  std::string Current() const { return source_ != nullptr ? source_->Current() : fixed_; }

 private:
  std::string fixed_;
  std::shared_ptr<const ApiKeySource> source_;
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_API_KEY_H_
