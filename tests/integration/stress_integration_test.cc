// Stress (issue #8): the reactor / upstream / cancel lifetimes under load, through the whole stack
// (gRPC server → retrying Gemini client → HTTP client → emulator). For every RPC kind (Caption,
// Detect, Segment, CountTokens, Upload) many calls run at once, each with its own randomised
// plan: the emulator answers after a random delay, in random byte pieces with random pauses, or
// fails (503, 429 with RetryInfo, reset before the answer, stream cut mid-way); the client
// cancels at a random time, gives a random short deadline, or reads slowly. So cancellation,
// deadline expiry and upstream completion land in every order. Every call must end with a status
// its plan allows, a successful call must carry exactly the results its script produced (no
// result lost, duplicated or taken from another call), and afterwards nothing is left in flight
// and the server still serves. A last test shuts the server down with calls of every kind in
// the middle.
//
// Built normally this runs a few hundred calls in seconds; scripts/sanitize.sh runs thousands per
// kind under ASan+UBSan, where a use-after-free, a double Finish or a leaked reactor fails the run.
// Knobs (environment): STRESS_SEED (the plans; printed with every failure), STRESS_CALLS (calls
// per kind), STRESS_WINDOW (calls in flight), STRESS_SHUTDOWN_ROUNDS.
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/error_details.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "emulator/gemini_wire.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/common/log.h"
#include "service/common/timer.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
using emulator::ScriptedResponse;

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  int parsed = 0;
  return value != nullptr && absl::SimpleAtoi(value, &parsed) ? parsed : fallback;
}

constexpr int kDefaultSeed = 20261130;
constexpr int kImageWidth = 160;
constexpr int kImageHeight = 120;
// "Never" for this test: a call with this deadline must not end DEADLINE_EXCEEDED.
constexpr absl::Duration kLongDeadline = absl::Seconds(60);
// Bound on waiting for every call of a phase to end (a hang fails instead of blocking).
constexpr absl::Duration kPhaseBound = absl::Seconds(240);

enum class Kind { kCaption, kDetect, kSegment, kCountTokens, kUpload };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kCaption: return "Caption";
    case Kind::kDetect: return "Detect";
    case Kind::kSegment: return "Segment";
    case Kind::kCountTokens: return "CountTokens";
    case Kind::kUpload: return "Upload";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// What the emulator answers. Script `s` is a function of s alone, so a result names its script
// and can be checked against it: caption s says "Caption s: ...", objects of script s are
// labelled "s<s>o<j>", CountTokens of script s counts kTokenBase + s.

constexpr int kTokenBase = 100000;

std::string CaptionText(int s) {
  return absl::StrCat("Caption ", s, ": a red square on a white ground, stress script ", s, ".");
}
int ObjectCount(int s) { return 1 + s % 4; }
std::string Label(int s, int j) { return absl::StrCat("s", s, "o", j); }
// Gemini's box_2d of object j: [ymin, xmin, ymax, xmax], 0..1000.
std::vector<int> Box2d(int j) { return {100 + 60 * j, 50 + 80 * j, 500 + 60 * j, 450 + 80 * j}; }

// A 16x16 probability map that is all "inside" (a Segment mask as Gemini sends it).
const std::string& MaskDataUri() {
  static const std::string* uri = [] {
    std::optional<std::string> png = Encode(MakePixels(16, 16, 1, 255), ".png");
    return new std::string(absl::StrCat("data:image/png;base64,", absl::Base64Escape(*png)));
  }();
  return *uri;
}

std::string SpatialJson(int s, bool masks) {
  std::vector<std::string> items;
  for (int j = 0; j < ObjectCount(s); ++j) {
    std::string item = absl::StrCat("{\"box_2d\": [", absl::StrJoin(Box2d(j), ", "),
                                    "], \"label\": \"", Label(s, j), "\"");
    if (masks) absl::StrAppend(&item, ", \"mask\": \"", MaskDataUri(), "\"");
    items.push_back(item + "}");
  }
  return absl::StrCat("[", absl::StrJoin(items, ",\n"), "]");
}

// `text` cut at random places into 1..6 pieces.
std::vector<std::string> SplitRandomly(const std::string& text, std::mt19937_64& rng) {
  std::vector<std::string> pieces;
  const int n = 1 + static_cast<int>(rng() % 6);
  size_t at = 0;
  for (int i = 1; i < n && at < text.size(); ++i) {
    const size_t len = 1 + rng() % std::max<size_t>(1, (text.size() - at) / 2);
    pieces.push_back(text.substr(at, len));
    at += len;
  }
  if (at < text.size()) pieces.push_back(text.substr(at));
  return pieces;
}

// The bytes of `response`'s stream joined and cut again at random byte positions: SSE events
// split anywhere.
void ResplitStream(ScriptedResponse& response, std::mt19937_64& rng) {
  response.stream_writes = SplitRandomly(absl::StrJoin(response.stream_writes, ""), rng);
}

ScriptedResponse ScriptFor(Kind kind, int s, std::mt19937_64& rng) {
  const int roll = static_cast<int>(rng() % 100);
  ScriptedResponse response;
  if (roll < 5) {
    response = emulator::ScriptedError(503, "The model is overloaded. Please try again later.");
  } else if (roll < 10) {
    response = emulator::ScriptedError(429, "Resource has been exhausted (e.g. check quota).",
                                       emulator::RetryInfoDetails("0.005s"));
  } else if (roll < 14) {
    response.drop_connection_after_writes = true;  // reset before any response byte
  } else if (kind == Kind::kCountTokens) {
    response.body = absl::StrCat("{\n  \"totalTokens\": ", kTokenBase + s, "\n}\n");
  } else {
    const std::string text = kind == Kind::kCaption ? CaptionText(s)
                                                    : SpatialJson(s, kind == Kind::kSegment);
    response = emulator::ScriptedStream(SplitRandomly(text, rng));
    ResplitStream(response, rng);
    // Some streams are cut after a random piece (a connection lost mid-answer).
    if (roll < 18 && response.stream_writes.size() > 1) {
      response.stream_writes.resize(1 + rng() % (response.stream_writes.size() - 1));
      response.drop_connection_after_writes = true;
    }
    response.delay_between_writes = std::chrono::milliseconds(rng() % 12);
  }
  response.delay_before_headers = std::chrono::milliseconds(rng() % 60);
  return response;
}

// ---------------------------------------------------------------------------------------------
// What the client does.

struct Plan {
  absl::Duration deadline = kLongDeadline;
  std::optional<absl::Duration> cancel_after;
  absl::Duration read_pause;  // before each read (or upload write) after the first: a slow reader
  int upload_pieces = 1;

  bool short_deadline() const { return deadline < kLongDeadline; }
  std::string ToString() const {
    return absl::StrCat("deadline ", absl::FormatDuration(deadline), ", cancel ",
                        cancel_after ? absl::FormatDuration(*cancel_after) : "never", ", pause ",
                        absl::FormatDuration(read_pause));
  }
};

Plan MakePlan(std::mt19937_64& rng) {
  Plan plan;
  if (rng() % 4 == 0) plan.deadline = absl::Milliseconds(1 + rng() % 120);
  if (rng() % 4 == 0) plan.cancel_after = absl::Milliseconds(rng() % 120);
  if (rng() % 5 == 0) plan.read_pause = absl::Milliseconds(1 + rng() % 10);
  plan.upload_pieces = 1 + static_cast<int>(rng() % 4);
  return plan;
}

// The codes a call may end with: the upstream faults' codes and our own overload, plus CANCELLED
// when it was cancelled and DEADLINE_EXCEEDED when its deadline was short.
bool Allowed(const Plan& plan, grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    case grpc::StatusCode::CANCELLED:
      return plan.cancel_after.has_value();
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return plan.short_deadline();
    default:
      return false;
  }
}

std::string ErrorDomain(const grpc::Status& status) {
  google::rpc::Status details;
  if (!grpc::ExtractErrorDetails(status, &details).ok()) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.Is<google::rpc::ErrorInfo>() && any.UnpackTo(&info)) {
      return absl::StrCat(info.domain(), "/", info.reason());
    }
  }
  return "";
}

// Checks of what a call received: "" when consistent with one script (complete when the call
// ended OK), else what is wrong.

std::string CheckCaption(const std::vector<v1::CaptionResponse>& messages, bool ok) {
  std::string text;
  for (const auto& m : messages) text += m.text();
  if (text.empty()) return ok ? "OK without text" : "";
  int s = -1;
  std::vector<absl::string_view> head = absl::StrSplit(text, absl::MaxSplits(':', 1));
  const std::string prefix = "Caption ";
  if (head.size() < 2) {  // cut before the script number was complete
    return absl::StartsWith(prefix, text) || absl::StartsWith(text, prefix) ? "" : "bad text: " + text;
  }
  if (!absl::StartsWith(head[0], prefix) ||
      !absl::SimpleAtoi(head[0].substr(prefix.size()), &s)) {
    return "text of no script: " + text;
  }
  const std::string want = CaptionText(s);
  if (ok ? text != want : !absl::StartsWith(want, text)) {
    return absl::StrCat("text '", text, "' is not script ", s, "'s '", want, "'");
  }
  if (ok && messages.back().finish_reason() != "STOP") return "OK without finish_reason STOP";
  return "";
}

// The script s of a label "s<s>o<j>".
bool ScriptOfLabel(absl::string_view label, int* s) {
  if (!absl::ConsumePrefix(&label, "s")) return false;
  return absl::SimpleAtoi(label.substr(0, label.find('o')), s);
}

// Detect and Segment: image info first, then objects of one script in order, then the summary.
template <typename Response, typename Object>
std::string CheckObjects(const std::vector<Response>& messages, bool ok,
                         const Object& (Response::*object)() const,
                         bool (Response::*has_object)() const) {
  int s = -1;
  int count = 0;
  bool summary = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Response& m = messages[i];
    if (summary) return "a message after the summary";
    if (i == 0) {
      if (!m.has_image_info()) return "first message is not image_info";
      if (m.image_info().width() != kImageWidth || m.image_info().height() != kImageHeight) {
        return "wrong image size";
      }
      continue;
    }
    if (m.has_summary()) {
      summary = true;
      if (s < 0 || m.summary().count() != count || count != ObjectCount(s)) {
        return absl::StrCat("summary count ", m.summary().count(), " after ", count,
                            " objects of script ", s);
      }
      continue;
    }
    if (!(m.*has_object)()) return "unexpected message";
    const Object& o = (m.*object)();
    if (count == 0 && !ScriptOfLabel(o.label(), &s)) return "label of no script: " + o.label();
    if (o.index() != count || o.label() != Label(s, count)) {
      return absl::StrCat("object ", o.index(), " '", o.label(), "' where #", count, " '",
                          Label(s, count), "' was due");
    }
    const std::vector<int> box = Box2d(count);
    if (o.normalized_box().y_min() != box[0] || o.normalized_box().x_min() != box[1] ||
        o.normalized_box().y_max() != box[2] || o.normalized_box().x_max() != box[3]) {
      return absl::StrCat("object ", count, " has the wrong box");
    }
    if constexpr (std::is_same_v<Object, v1::Mask>) {
      if (o.png().empty() || o.area() <= 0 || o.rle().size_size() != 2) {
        return absl::StrCat("mask ", count, " is empty");
      }
    }
    ++count;
  }
  if (ok && !summary) return "OK without a summary";
  return "";
}

std::string CheckCountTokens(const v1::CountTokensResponse& response, bool ok) {
  if (!ok) return "";
  const int s = response.total_tokens() - kTokenBase;
  if (s < 0 || s > 1000000) return absl::StrCat("total_tokens ", response.total_tokens());
  if (response.estimated_image_tokens() != 258) {
    return absl::StrCat("estimated_image_tokens ", response.estimated_image_tokens());
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// The client side: callback-API calls, a bounded number in flight, cancel and slow-read timers.

struct Outcome {
  int id = 0;
  Plan plan;
  grpc::Status status;
  std::string problem;  // empty: the results were as the status allows
};

class Driver {
 public:
  Driver(v1::VisionService::Stub& stub, int window) : stub_(stub), window_(window) {}
  ~Driver() { timer_.reset(); }  // drops pending cancel timers (their calls have ended)

  v1::VisionService::Stub& stub() { return stub_; }
  Timer& timer() { return *timer_; }

  // Blocks while `window` calls are in flight, then counts one more.
  void Acquire() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](Driver* d) ABSL_NO_THREAD_SAFETY_ANALYSIS { return d->in_flight_ < d->window_; },
        this));
    ++in_flight_;
  }

  void Record(Outcome outcome) {
    absl::MutexLock lock(&mu_);
    outcomes_.push_back(std::move(outcome));
    --in_flight_;
  }

  // Waits until every started call ended; false on timeout.
  bool WaitAll(absl::Duration bound) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(+[](int* n) { return *n == 0; }, &in_flight_), bound);
  }

  std::vector<Outcome> TakeOutcomes() {
    absl::MutexLock lock(&mu_);
    return std::move(outcomes_);
  }

  int in_flight() {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }

 private:
  v1::VisionService::Stub& stub_;
  std::shared_ptr<Timer> timer_ = MakeThreadTimer();
  absl::Mutex mu_;
  int window_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
};

// What every call shares: the context with its deadline, the cancel timer, the outcome. A call
// owns itself from Start until gRPC's OnDone (the cancel timer may hold it a little longer).
class Call : public std::enable_shared_from_this<Call> {
 public:
  virtual ~Call() = default;

  void Start(int id, Plan plan) {
    id_ = id;
    plan_ = std::move(plan);
    self_ = shared_from_this();
    context_.set_deadline(absl::ToChronoTime(absl::Now() + plan_.deadline));
    if (plan_.cancel_after) {
      cancel_timer_ = driver_.timer().RunAt(
          absl::Now() + *plan_.cancel_after,
          [self = shared_from_this()] { self->context_.TryCancel(); });
    }
    Begin();
  }

 protected:
  explicit Call(Driver& driver) : driver_(driver) {}
  virtual void Begin() = 0;

  // The last thing a call does (from its OnDone): may destroy it.
  void End(const grpc::Status& status, std::string problem) {
    Driver& driver = driver_;
    Outcome outcome{id_, plan_, status, std::move(problem)};
    if (cancel_timer_ != 0) driver.timer().Cancel(cancel_timer_);
    { std::shared_ptr<Call> release = std::move(self_); }
    driver.Record(std::move(outcome));
  }

  // Runs `fn` after the plan's pause (at once without one).
  void AfterPause(absl::AnyInvocable<void()> fn) {
    if (plan_.read_pause <= absl::ZeroDuration()) return fn();
    driver_.timer().RunAt(absl::Now() + plan_.read_pause, std::move(fn));
  }

  Driver& driver_;
  grpc::ClientContext context_;
  Plan plan_;

 private:
  int id_ = 0;
  Timer::Id cancel_timer_ = 0;
  std::shared_ptr<Call> self_;
};

// A server-streaming call, read slowly when the plan says so. A hold keeps OnDone from running
// while a delayed read is pending.
template <typename Request, typename Response>
class StreamCall final : public Call, public grpc::ClientReadReactor<Response> {
 public:
  using Method = void (v1::VisionService::Stub::async_interface::*)(
      grpc::ClientContext*, const Request*, grpc::ClientReadReactor<Response>*);
  using Check = std::string (*)(const std::vector<Response>&, bool);

  StreamCall(Driver& driver, Request request, Method method, Check check)
      : Call(driver), request_(std::move(request)), method_(method), check_(check) {}

  void OnReadDone(bool ok) override {
    if (!ok) {
      this->RemoveHold();
      return;
    }
    messages_.push_back(std::move(message_));
    AfterPause([this] { this->StartRead(&message_); });
  }

  void OnDone(const grpc::Status& status) override {
    End(status, check_(messages_, status.ok()));
  }

 private:
  void Begin() override {
    (driver_.stub().async()->*method_)(&context_, &request_, this);
    this->AddHold();
    this->StartRead(&message_);
    this->StartCall();
  }

  Request request_;
  Method method_;
  Check check_;
  Response message_;
  std::vector<Response> messages_;
};

class CountTokensCall final : public Call {
 public:
  CountTokensCall(Driver& driver, v1::CountTokensRequest request)
      : Call(driver), request_(std::move(request)) {}

 private:
  void Begin() override {
    driver_.stub().async()->CountTokens(&context_, &request_, &response_,
                                        [this](grpc::Status status) {
                                          End(status, CheckCountTokens(response_, status.ok()));
                                        });
  }

  v1::CountTokensRequest request_;
  v1::CountTokensResponse response_;
};

// Upload: the header, then the bytes in plan.upload_pieces messages, written slowly when the plan
// says so.
class UploadCall final : public Call, public grpc::ClientWriteReactor<v1::UploadRequest> {
 public:
  UploadCall(Driver& driver, const std::string& bytes) : Call(driver), bytes_(bytes) {}

  void OnWriteDone(bool ok) override {
    if (!ok) {  // the server ended the call
      RemoveHold();
      return;
    }
    const size_t piece = (bytes_.size() + plan_.upload_pieces - 1) / plan_.upload_pieces;
    if (written_ >= bytes_.size()) {
      StartWritesDone();
      RemoveHold();
      return;
    }
    message_.set_chunk(bytes_.substr(written_, piece));
    written_ += piece;
    AfterPause([this] { StartWrite(&message_); });
  }

  void OnDone(const grpc::Status& status) override {
    std::string problem;
    if (status.ok() && (!absl::StartsWith(file_.name(), "files/") ||
                        file_.size_bytes() != static_cast<int64_t>(bytes_.size()) ||
                        file_.width() != kImageWidth || file_.height() != kImageHeight)) {
      problem = "OK with a wrong file: " + file_.ShortDebugString();
    }
    End(status, problem);
  }

 private:
  void Begin() override {
    driver_.stub().async()->Upload(&context_, &file_, this);
    message_.mutable_header()->set_size_bytes(static_cast<int64_t>(bytes_.size()));
    message_.mutable_header()->set_display_name("stress");
    AddHold();
    StartWrite(&message_);
    StartCall();
  }

  const std::string& bytes_;
  size_t written_ = 0;
  v1::UploadRequest message_;
  v1::File file_;
};

// ---------------------------------------------------------------------------------------------

class StressTest : public GatewayTest {
 protected:
  void SetUp() override {
    seed_ = EnvInt("STRESS_SEED", kDefaultSeed);
    calls_ = EnvInt("STRESS_CALLS", 60);
    window_ = EnvInt("STRESS_WINDOW", 32);
    // Thousands of calls: the access log and upstream warnings would drown a failure's output.
    SetMinLogSeverity(LogSeverity::kError);
    StartStressStack();
  }

  void TearDown() override {
    GatewayTest::TearDown();
    SetMinLogSeverity(LogSeverity::kInfo);
  }

  void StartStressStack() {
    StackOptions stack;
    stack.retries = true;
    stack.retry.max_attempts = 2;
    stack.retry.initial_backoff = absl::Milliseconds(5);
    stack.retry.max_backoff = absl::Milliseconds(20);
    stack.retry.seed = static_cast<uint64_t>(seed_);
    // A little above the client's window: a call the client gave up on keeps its permit until
    // its upstream work ended, so some calls still meet the concurrency limit; a small CPU queue.
    stack.limits.max_concurrent_calls = window_ + window_ / 4;
    stack.limits.max_queued_cpu_work = 16;
    StartStackWith(stack);
  }

  std::string Repro() const {
    return absl::StrCat("STRESS_SEED=", seed_, " STRESS_CALLS=", calls_, " STRESS_WINDOW=",
                        window_);
  }

  std::shared_ptr<Call> NewCall(Driver& driver, Kind kind) {
    switch (kind) {
      case Kind::kCaption: {
        v1::CaptionRequest request;
        request.add_images()->set_content(png_);
        return std::make_shared<StreamCall<v1::CaptionRequest, v1::CaptionResponse>>(
            driver, std::move(request), &v1::VisionService::Stub::async_interface::Caption,
            &CheckCaption);
      }
      case Kind::kDetect: {
        v1::DetectRequest request;
        request.mutable_image()->set_content(png_);
        return std::make_shared<StreamCall<v1::DetectRequest, v1::DetectResponse>>(
            driver, std::move(request), &v1::VisionService::Stub::async_interface::Detect,
            +[](const std::vector<v1::DetectResponse>& m, bool ok) {
              return CheckObjects(m, ok, &v1::DetectResponse::detection,
                                  &v1::DetectResponse::has_detection);
            });
      }
      case Kind::kSegment: {
        v1::SegmentRequest request;
        request.mutable_image()->set_content(png_);
        return std::make_shared<StreamCall<v1::SegmentRequest, v1::SegmentResponse>>(
            driver, std::move(request), &v1::VisionService::Stub::async_interface::Segment,
            +[](const std::vector<v1::SegmentResponse>& m, bool ok) {
              return CheckObjects(m, ok, &v1::SegmentResponse::mask,
                                  &v1::SegmentResponse::has_mask);
            });
      }
      case Kind::kCountTokens: {
        v1::CountTokensRequest request;
        request.add_images()->set_content(png_);
        return std::make_shared<CountTokensCall>(driver, std::move(request));
      }
      case Kind::kUpload:
        return std::make_shared<UploadCall>(driver, upload_png_);
    }
    return nullptr;
  }

  // Waits (bounded) until the server has no call in flight: every reactor got OnDone and its
  // upstream work ended.
  bool WaitForNoCallsInFlight(absl::Duration bound) {
    const absl::Time until = absl::Now() + bound;
    while (absl::Now() < until) {
      if (absl::StrContains(metrics_->Scrape(), "\nvision_gateway_calls_in_flight 0\n")) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(10));  // polling a condition, not synchronising on time
    }
    return false;
  }

  // Runs `calls_` calls of `kind` (scripts queued for the model kinds, upload faults injected for
  // Upload) and checks every outcome and the state afterwards.
  void RunPhase(Kind kind) {
    SCOPED_TRACE(absl::StrCat(KindName(kind), " stress; repeat with ", Repro()));
    std::mt19937_64 rng(static_cast<uint64_t>(seed_) * 31 + static_cast<uint64_t>(kind));
    if (kind != Kind::kUpload) {
      // Enough for every attempt of every call; what is left over is cleared at the end.
      for (int s = 0; s < 2 * calls_ + 8; ++s) emulator_->Enqueue(ScriptFor(kind, s, rng));
    }
    const absl::Time start = absl::Now();
    {
      Driver driver(*stub_, window_);
      for (int i = 0; i < calls_; ++i) {
        const Plan plan = MakePlan(rng);
        if (kind == Kind::kUpload && rng() % 10 == 0) {
          emulator_->InjectUploadFault(
              emulator::UploadChunkFault{.status = 503, .drop_connection = rng() % 2 == 0});
        }
        driver.Acquire();
        NewCall(driver, kind)->Start(i, plan);
      }
      if (!driver.WaitAll(kPhaseBound)) {
        std::fprintf(stderr, "%s stress: %d calls never ended (%s)\n", KindName(kind),
                     driver.in_flight(), Repro().c_str());
        std::abort();  // their reactors still reference this stack: no clean way on
      }
      outcomes_ = driver.TakeOutcomes();
    }
    const absl::Duration took = absl::Now() - start;

    std::map<grpc::StatusCode, int> codes;
    std::map<std::string, int> reasons;  // "<code>/<ErrorInfo reason>", for the summary line
    int bad = 0;
    for (const Outcome& o : outcomes_) {
      const grpc::StatusCode code = o.status.error_code();
      ++codes[code];
      ++reasons[absl::StrCat(code, absl::StripPrefix(ErrorDomain(o.status), "vision-gateway"))];
      std::string why;
      if (!Allowed(o.plan, code)) why = "unexpected code";
      if (!o.problem.empty()) why = o.problem;
      // Codes only the server produces carry the gateway's ErrorInfo.
      if ((code == grpc::StatusCode::UNAVAILABLE ||
           code == grpc::StatusCode::RESOURCE_EXHAUSTED) &&
          !absl::StartsWith(ErrorDomain(o.status), "vision-gateway/")) {
        why = "no vision-gateway ErrorInfo";
      }
      if (!why.empty() && ++bad <= 20) {
        ADD_FAILURE() << KindName(kind) << " call " << o.id << " (" << o.plan.ToString()
                      << ") ended " << o.status.error_code() << " '" << o.status.error_message()
                      << "' " << ErrorDomain(o.status) << ": " << why;
      }
    }
    EXPECT_EQ(bad, 0) << "calls with an unexpected end";
    EXPECT_EQ(static_cast<int>(outcomes_.size()), calls_);
    std::string summary;
    for (const auto& [code, n] : reasons) absl::StrAppend(&summary, " code", code, "=", n);
    std::printf("[stress] %s: %d calls in %s:%s\n", KindName(kind), calls_,
                absl::FormatDuration(took).c_str(), summary.c_str());
    EXPECT_GT(codes[grpc::StatusCode::OK], 0) << "no call succeeded";
    if (calls_ >= 200) {  // enough calls that every path was taken
      EXPECT_GT(codes[grpc::StatusCode::CANCELLED], 0);
      EXPECT_GT(codes[grpc::StatusCode::DEADLINE_EXCEEDED], 0);
    }

    // Nothing left behind: no call in flight, no upload session open upstream.
    EXPECT_TRUE(WaitForNoCallsInFlight(absl::Seconds(30))) << metrics_->Scrape();
    if (kind == Kind::kUpload) {
      EXPECT_TRUE(emulator_->WaitForOpenUploads(0, absl::Seconds(30)).ok())
          << emulator_->OpenUploads() << " upload sessions left open upstream";
    }
    // Still serving: one more call, scene mode, no fault, ends OK.
    emulator_->ClearScript();
    {
      Driver driver(*stub_, 1);
      driver.Acquire();
      NewCall(driver, kind)->Start(-1, Plan{});
      ASSERT_TRUE(driver.WaitAll(absl::Seconds(60)));
      std::vector<Outcome> last = driver.TakeOutcomes();
      ASSERT_EQ(last.size(), 1u);
      EXPECT_TRUE(last[0].status.ok()) << "after the stress: " << last[0].status.error_message();
    }
  }

  int seed_ = kDefaultSeed;
  int calls_ = 0;
  int window_ = 0;
  std::vector<Outcome> outcomes_;
  std::string png_ = MakePng(kImageWidth, kImageHeight, {255, 255, 255}, {220, 20, 20}, 30, 20,
                             90, 80);
  std::string upload_png_ = *Encode(NoisePixels(kImageWidth, kImageHeight, 3), ".png");
};

TEST_F(StressTest, Caption) { RunPhase(Kind::kCaption); }
TEST_F(StressTest, Detect) { RunPhase(Kind::kDetect); }
TEST_F(StressTest, Segment) { RunPhase(Kind::kSegment); }
TEST_F(StressTest, CountTokens) { RunPhase(Kind::kCountTokens); }
TEST_F(StressTest, Upload) { RunPhase(Kind::kUpload); }

// Shutdown with calls of every kind in the middle (upstream answers pending, streams half read,
// uploads half written, clients cancelling): every call ends, with OK, CANCELLED or UNAVAILABLE, Shutdown keeps to
// its grace, and the server can be destroyed at once while upstream work is still unwinding
// (scene mode: the results' content is checked by the tests above).
TEST_F(StressTest, ShutdownInTheMiddle) {
  const int rounds = EnvInt("STRESS_SHUTDOWN_ROUNDS", 4);
  SCOPED_TRACE(absl::StrCat("repeat with ", Repro(), " STRESS_SHUTDOWN_ROUNDS=", rounds));
  std::mt19937_64 rng(static_cast<uint64_t>(seed_) * 77);
  std::map<grpc::StatusCode, int> codes;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    if (round > 0) {
      GatewayTest::TearDown();
      StartStressStack();
    }
    emulator::EmulatorConfig config = emulator_->config();
    config.response_delay = std::chrono::milliseconds(rng() % 80);
    config.stream_event_delay = std::chrono::milliseconds(rng() % 10);
    emulator_->SetConfig(config);
    const int n = window_ - 8;  // all admitted
    const size_t shutdown_after = rng() % (n / 2);  // upstream requests seen
    const absl::Duration grace = absl::Milliseconds(rng() % 3 == 0 ? 0 : rng() % 100);
    Driver driver(*stub_, n);
    for (int i = 0; i < n; ++i) {
      Plan plan = MakePlan(rng);
      plan.deadline = kLongDeadline;
      // Some clients go away just before or during the shutdown: their streams end for gRPC
      // while their upstream work is still unwinding (the service must wait for it).
      if (rng() % 3 != 0) plan.cancel_after.reset();
      driver.Acquire();
      NewCall(driver, static_cast<Kind>(i % 5))->Start(i, plan);
    }
    ASSERT_TRUE(emulator_->WaitForRequests(shutdown_after, absl::Seconds(30)).ok());
    const absl::Time start = absl::Now();
    server_->Shutdown(grace);
    EXPECT_LT(absl::Now() - start, grace + absl::Seconds(10)) << "Shutdown overran its grace";
    server_.reset();  // upstream callbacks may still be on their way
    if (!driver.WaitAll(kPhaseBound)) {
      std::fprintf(stderr, "shutdown round %d: %d calls never ended (%s)\n", round,
                   driver.in_flight(), Repro().c_str());
      std::abort();
    }
    for (const Outcome& o : driver.TakeOutcomes()) {
      const grpc::StatusCode code = o.status.error_code();
      ++codes[code];
      // RESOURCE_EXHAUSTED: the CPU queue was full before the shutdown.
      EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::CANCELLED ||
                  code == grpc::StatusCode::UNAVAILABLE ||
                  code == grpc::StatusCode::RESOURCE_EXHAUSTED)
          << "call " << o.id << " (" << KindName(static_cast<Kind>(o.id % 5)) << ") ended "
          << code << " '" << o.status.error_message() << "'";
    }
  }
  std::string summary;
  for (const auto& [code, n] : codes) absl::StrAppend(&summary, " code", code, "=", n);
  std::printf("[stress] shutdown: %d rounds:%s\n", rounds, summary.c_str());
}

}  // namespace
}  // namespace vision_gateway::testing
