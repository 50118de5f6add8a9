// The Batch API of the emulator (gemini-wire.md, addendum "Batch API"): batchGenerateContent with
// inline requests or a JSONL input file, batches get/list/cancel/delete. A job is an operation
// whose metadata is a GenerateContentBatch; it is PENDING for the first half of its processing
// time, RUNNING for the second, then SUCCEEDED (or FAILED when EmulatorConfig::fail_batches was
// set at its creation). Time is the file store's advanceable clock: a job still PENDING or RUNNING
// 48 h after its creation is EXPIRED. States move when a job is observed (get, list, cancel): the
// lines run then, one by one, through the same path as an online generateContent (scene or script
// mode, script entries included), so nothing runs in the background. The request that finds a
// job due takes its lines out and runs them without holding the store's lock, then publishes the
// outcome under it; requests meanwhile see the job RUNNING, and a job cancelled or deleted while
// its lines run stays so (the outcome is dropped).
//
// Output: inline input answers inline (metadata.output.inlinedResponses.inlinedResponses[], each
// {"response"|"error", "metadata"} with the request's metadata echoed); file input answers with a
// responses file (metadata.output.responsesFile "files/batch-<id>", ACTIVE, source GENERATED), one
// JSONL line per input line in input order: {"key": k, "response": {...}} or
// {"key": k, "error": {"code": <HTTP code>, "message": ..., "status": "RESOURCE_EXHAUSTED"}},
// readable with GET files/{id}:download?alt=media.
//
// Validation at creation (400 INVALID_ARGUMENT unless said): a body that is not {"batch": {...}},
// unknown fields (strict mode), a missing displayName or inputConfig, both or neither of
// inputConfig.requests and inputConfig.fileName, an empty or malformed requests list, an input
// file that does not exist (403, as files.get answers) or is not ACTIVE, a JSONL line that is not
// an object with an object "request" (the message names the line), more than kMaxRequests lines.
// A request that is an object but not a valid GenerateContentRequest fails only its own line.
// The model is refused as online calls refuse it (404 "models/x is not found ...").
#ifndef VISION_GATEWAY_EMULATOR_BATCHES_H_
#define VISION_GATEWAY_EMULATOR_BATCHES_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "emulator/emulator.h"
#include "emulator/files.h"

namespace vision_gateway::emulator {

// The answer of one line, as JSON text: the GenerateContentResponse, or the error object
// ({"code", "message", "status"}).
struct BatchLineResult {
  bool ok = false;
  std::string json;
};

// Runs one line: the model id, the request (a JSON object, its "model" member removed) and the
// line's key ("" when it has none). Called without the store's lock (a job's lines are produced
// outside it, so a big job does not stall other requests), possibly from several requests at
// once for different jobs; it must not call back into the batch store.
using BatchLineRunner = std::function<BatchLineResult(
    const std::string& api_version, const std::string& model, std::string request_json,
    const std::string& key)>;

struct BatchRequest {
  std::string method;
  std::string api_version;
  // Path segments after the version: {"batches"[, "<id>" | "<id>:cancel"]}.
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;
};

class BatchStore {
 public:
  static constexpr size_t kMaxRequests = 100000;  // lines of one job
  static constexpr size_t kMaxJobs = 10000;       // jobs kept at once (429 beyond)

  explicit BatchStore(FileStore* files) : files_(files) {}

  // POST /{v}/models/{model}:batchGenerateContent.
  ScriptedResponse Create(const std::string& api_version, const std::string& model,
                          std::string_view body, const EmulatorConfig& config);
  // The batches/... routes.
  ScriptedResponse Handle(const BatchRequest& request, const BatchLineRunner& run);

  void Clear();
  int JobCount() const;

 private:
  enum class State { kActive, kSucceeded, kFailed, kCancelled, kExpired };
  struct Line {
    std::string key;            // the JSONL key, or metadata.key inline
    std::string metadata_json;  // inline: the metadata object as sent ("" when absent)
    std::string request_json;   // the request object, its "model" member removed
  };
  struct Job {
    std::string id;
    std::string display_name;
    std::string model;  // id, without "models/"
    std::string api_version;
    std::string input_file;  // "files/<id>"; empty for inline input
    absl::Time create_time;
    absl::Duration processing;
    bool fails = false;
    State state = State::kActive;
    bool producing = false;  // a request is running its lines (outside the lock)
    absl::Time end_time;
    std::vector<Line> lines;  // dropped once the job ended
    int64_t request_count = 0;
    int64_t succeeded = 0;
    int64_t failed = 0;
    std::vector<std::string> inlined_responses;  // JSON objects, inline input
    std::string responses_file;                  // "files/<id>", file input
    uint64_t order = 0;
  };

  // What a due job's lines need to run, taken out of the job (its lines moved).
  struct Production {
    std::string id;
    std::string model;
    std::string api_version;
    std::string input_file;
    std::vector<Line> lines;
    // The outcome, filled by Produce.
    int64_t succeeded = 0;
    int64_t failed = 0;
    std::vector<std::string> inlined_responses;
    std::string responses_file;  // "files/<id>"; empty: inline, or storing it failed
    bool store_failed = false;
  };

  // Brings the job up to date with the clock. A job whose lines are due is marked producing and
  // its lines are returned, to be run (Produce) without the lock and then Publish()ed.
  std::optional<Production> AdvanceLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the lines and stores a file job's responses file. Without the lock.
  void Produce(Production& production, const BatchLineRunner& run) ABSL_LOCKS_EXCLUDED(mu_);
  // The outcome into its job, unless the job was cancelled or deleted meanwhile (then the
  // responses file is removed again).
  void Publish(Production production) ABSL_LOCKS_EXCLUDED(mu_);
  // Produces and publishes each of `productions`.
  void Run(std::vector<Production>& productions, const BatchLineRunner& run)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::string OperationJson(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ScriptedResponse Get(const std::string& id, const BatchLineRunner& run);
  ScriptedResponse List(const BatchRequest& request, const BatchLineRunner& run);
  ScriptedResponse Cancel(const std::string& id, const BatchLineRunner& run);
  ScriptedResponse Delete(const std::string& id);

  FileStore* const files_;
  mutable absl::Mutex mu_;
  std::map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_BATCHES_H_
