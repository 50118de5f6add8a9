// An in-memory http::HttpClient for Gemini client tests: records every request and plays back
// scripted responses, delivering the body in pieces cut at chosen offsets. Nothing touches the
// network. Delivery is driven by the test (RunUntilIdle / Step), like an io_context the test runs
// by hand, so callbacks never run inside Stream()/Fetch() themselves.
#ifndef VISION_GATEWAY_TESTS_SERVICE_GEMINI_FAKE_HTTP_CLIENT_H_
#define VISION_GATEWAY_TESTS_SERVICE_GEMINI_FAKE_HTTP_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/http/http_client.h"

namespace vision_gateway::testing {

struct ScriptedResponse {
  // Non-OK: the call fails before any response head (on_done / done with this status only).
  absl::Status fail_before_head = absl::OkStatus();
  int status = 200;
  http::Headers headers;
  std::string body;
  // The body is delivered in pieces cut at these (increasing) offsets.
  std::vector<std::size_t> split_at;
  // Status reported by on_done after the whole body (e.g. UNAVAILABLE for a reset connection).
  absl::Status end_status = absl::OkStatus();
};

// Splits at every `n` bytes.
inline std::vector<std::size_t> EveryNBytes(std::size_t size, std::size_t n) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = n; i < size; i += n) cuts.push_back(i);
  return cuts;
}

class FakeHttpCall final : public http::Call {
 public:
  FakeHttpCall(ScriptedResponse script, http::StreamHandler handler)
      : script_(std::move(script)), stream_(std::move(handler)), streaming_(true) {}
  FakeHttpCall(ScriptedResponse script,
               absl::AnyInvocable<void(absl::StatusOr<http::Response>)> done)
      : script_(std::move(script)), fetch_done_(std::move(done)), streaming_(false) {}

  void Cancel() override { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  bool finished() const { return finished_; }
  // Body bytes handed to on_body so far.
  std::size_t body_bytes_delivered() const { return offset_; }

  // Delivers the next callback; false once the call has completed.
  bool Step() {
    if (finished_) return false;
    if (cancelled_.load()) return Complete(absl::CancelledError("cancelled by caller"));
    if (!script_.fail_before_head.ok()) return Complete(script_.fail_before_head);
    if (!streaming_) {
      http::Response response;
      response.head.status = script_.status;
      response.head.headers = script_.headers;
      response.body = script_.body;
      finished_ = true;
      auto done = std::move(fetch_done_);
      done(std::move(response));
      return false;
    }
    if (!head_sent_) {
      head_sent_ = true;
      http::ResponseHead head;
      head.status = script_.status;
      head.headers = script_.headers;
      stream_.on_head(head);
      return true;
    }
    if (offset_ < script_.body.size()) {
      std::size_t end = script_.body.size();
      while (next_cut_ < script_.split_at.size()) {
        const std::size_t cut = script_.split_at[next_cut_++];
        if (cut > offset_ && cut < end) {
          end = cut;
          break;
        }
      }
      const std::string_view piece = std::string_view(script_.body).substr(offset_, end - offset_);
      offset_ = end;
      stream_.on_body(piece);
      return true;
    }
    return Complete(script_.end_status);
  }

 private:
  bool Complete(absl::Status status) {
    finished_ = true;
    if (streaming_) {
      // Like the real client: the handler (and what it captured) is released after on_done.
      auto on_done = std::move(stream_.on_done);
      stream_ = {};
      on_done(std::move(status));
    } else {
      auto done = std::move(fetch_done_);
      done(std::move(status));
    }
    return false;
  }

  ScriptedResponse script_;
  http::StreamHandler stream_;
  absl::AnyInvocable<void(absl::StatusOr<http::Response>)> fetch_done_;
  const bool streaming_;
  std::atomic<bool> cancelled_{false};
  bool finished_ = false;
  bool head_sent_ = false;
  std::size_t offset_ = 0;
  std::size_t next_cut_ = 0;
};

class FakeHttpClient final : public http::HttpClient {
 public:
  void Enqueue(ScriptedResponse response) { scripts_.push_back(std::move(response)); }

  std::shared_ptr<http::Call> Stream(http::Request request, http::StreamHandler handler) override {
    requests_.push_back(std::move(request));
    auto call = std::make_shared<FakeHttpCall>(NextScript(), std::move(handler));
    calls_.push_back(call);
    return call;
  }

  std::shared_ptr<http::Call> Fetch(
      http::Request request,
      absl::AnyInvocable<void(absl::StatusOr<http::Response>)> done) override {
    requests_.push_back(std::move(request));
    auto call = std::make_shared<FakeHttpCall>(NextScript(), std::move(done));
    calls_.push_back(call);
    return call;
  }

  // Delivers callbacks until every call has completed.
  void RunUntilIdle() {
    bool progress = true;
    while (progress) {
      progress = false;
      for (std::size_t i = 0; i < calls_.size(); ++i) {
        auto call = calls_[i];
        if (!call->finished()) {
          call->Step();
          progress = true;
        }
      }
    }
  }

  const std::vector<http::Request>& requests() const { return requests_; }
  FakeHttpCall& call(std::size_t i) { return *calls_.at(i); }
  std::size_t call_count() const { return calls_.size(); }
  // Drops the fake's references to its calls (as the real client does once they complete).
  void ForgetCalls() { calls_.clear(); }

 private:
  ScriptedResponse NextScript() {
    if (scripts_.empty()) {
      ScriptedResponse missing;
      missing.fail_before_head = absl::InternalError("fake: no scripted response");
      return missing;
    }
    ScriptedResponse next = std::move(scripts_.front());
    scripts_.pop_front();
    return next;
  }

  std::deque<ScriptedResponse> scripts_;
  std::vector<http::Request> requests_;
  std::vector<std::shared_ptr<FakeHttpCall>> calls_;
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_SERVICE_GEMINI_FAKE_HTTP_CLIENT_H_
