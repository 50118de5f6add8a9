// batch-bench: one batch job of --items small images, end to end, and what it cost.
//   batch-bench --mode grpc --target 127.0.0.1:PORT --items 10000 [--server_pid P] [--task detect]
//     Through vision-server: CreateBatch (one client stream: the header, then one item per
//     message), GetBatch every --poll_ms until the job ended, ReadBatchResults to the end.
//   batch-bench --mode gemini --gemini_base_url http://127.0.0.1:PORT --jsonl FILE --model M
//     Straight to a Gemini endpoint (the emulator) with a JSONL request file (bench/batch_bench.sh
//     passes the very file the gateway uploaded): the resumable upload in 8 MiB chunks,
//     batchGenerateContent from the file, batches.get every --poll_ms, the responses file's
//     download (its lines counted).
// Prints the time of each phase and per item, the time of the GetBatch call that found the job
// due (the emulator runs a job's lines inside that call: its own processing time), and with
// --server_pid the server's VmRSS before, at peak (sampled every 20 ms) and after; then one JSON
// line with the same figures.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/proc_status.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/rest_batches_stub.h"
#include "service/http/http_client.h"
#include "tests/testing/test_images.h"
#include "vision/v1/vision.grpc.pb.h"

ABSL_FLAG(std::string, mode, "grpc", "grpc (through vision-server) | gemini (straight upstream).");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "--mode grpc: vision-server host:port.");
ABSL_FLAG(int, items, 10000, "--mode grpc: images in the job.");
ABSL_FLAG(std::string, task, "detect", "--mode grpc: caption, detect or segment.");
ABSL_FLAG(std::string, gemini_base_url, "", "--mode gemini: scheme://host:port.");
ABSL_FLAG(std::string, api_key, "", "--mode gemini: API key (or $GEMINI_API_KEY).");
ABSL_FLAG(std::string, jsonl, "", "--mode gemini: the request file to upload.");
ABSL_FLAG(std::string, model, "gemini-3-flash-preview", "--mode gemini: the job's model.");
ABSL_FLAG(int, poll_ms, 100, "Time between two GetBatch calls while the job runs.");
ABSL_FLAG(int, server_pid, 0, "Sample this process's VmRSS every 20 ms.");
ABSL_FLAG(std::string, label, "", "Label of the JSON result line.");

namespace {

using namespace vision_gateway;  // NOLINT: a tool's main file
namespace v1 = ::vision::v1;

// What a run measured.
struct Figures {
  int64_t items = 0;
  double create_s = 0;
  double wait_s = 0;
  double last_get_s = 0;  // the GetBatch call that found the job due (its lines ran in it)
  double read_s = 0;
  int64_t results = 0;       // BatchResult messages, or response lines
  int64_t item_errors = 0;   // BatchResults carrying an error, or error lines
  std::string state;
  std::string error;  // empty: the run succeeded
};

// ---- Through vision-server ----

// A few different small scenes (a red and a blue rectangle at different places), cycled.
std::vector<std::string> Scenes() {
  std::vector<std::string> scenes;
  for (int i = 0; i < 16; ++i) {
    testing::Pixels pixels = testing::MakePixels(96, 72, 3);
    testing::FillRect(pixels, {255, 255, 255}, 0, 0, 96, 72);
    testing::FillRect(pixels, {220, 20, 20}, 4 + i, 6, 40 + i, 40);
    testing::FillRect(pixels, {20, 40, 220}, 50, 30 + i / 2, 90, 66);
    scenes.push_back(*testing::Encode(pixels, ".png"));
  }
  return scenes;
}

bool Ended(v1::BatchJob::State state) {
  return state == v1::BatchJob::STATE_SUCCEEDED || state == v1::BatchJob::STATE_FAILED ||
         state == v1::BatchJob::STATE_CANCELLED || state == v1::BatchJob::STATE_EXPIRED;
}

Figures RunGrpc() {
  Figures figures;
  auto stub = v1::VisionService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials()));
  const std::vector<std::string> scenes = Scenes();
  const int items = std::max(1, absl::GetFlag(FLAGS_items));
  const std::string task = absl::GetFlag(FLAGS_task);
  figures.items = items;

  absl::Time start = absl::Now();
  v1::BatchJob job;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(30)));
    auto writer = stub->CreateBatch(&context, &job);
    v1::CreateBatchRequest header;
    header.mutable_header()->set_task(task == "caption"   ? v1::BATCH_TASK_CAPTION
                                      : task == "segment" ? v1::BATCH_TASK_SEGMENT
                                                          : v1::BATCH_TASK_DETECT);
    header.mutable_header()->set_display_name("batch-bench");
    bool ok = writer->Write(header);
    v1::CreateBatchRequest item;
    for (int i = 0; ok && i < items; ++i) {
      item.mutable_item()->set_key(absl::StrCat("img-", i));
      item.mutable_item()->mutable_image()->set_content(scenes[i % scenes.size()]);
      ok = writer->Write(item);
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    if (!status.ok()) {
      figures.error = absl::StrCat("CreateBatch: ", status.error_message());
      return figures;
    }
  }
  figures.create_s = absl::ToDoubleSeconds(absl::Now() - start);

  start = absl::Now();
  while (!Ended(job.state())) {
    absl::SleepFor(absl::Milliseconds(absl::GetFlag(FLAGS_poll_ms)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(10)));
    v1::GetBatchRequest request;
    request.set_name(job.name());
    const absl::Time get_start = absl::Now();
    const grpc::Status status = stub->GetBatch(&context, request, &job);
    figures.last_get_s = absl::ToDoubleSeconds(absl::Now() - get_start);
    if (!status.ok()) {
      figures.error = absl::StrCat("GetBatch: ", status.error_message());
      return figures;
    }
  }
  figures.wait_s = absl::ToDoubleSeconds(absl::Now() - start);
  figures.state = v1::BatchJob::State_Name(job.state());
  if (job.state() != v1::BatchJob::STATE_SUCCEEDED) {
    figures.error = absl::StrCat("the job ended ", figures.state);
    return figures;
  }

  start = absl::Now();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(30)));
  v1::ReadBatchResultsRequest request;
  request.set_name(job.name());
  auto reader = stub->ReadBatchResults(&context, request);
  v1::BatchResult result;
  while (reader->Read(&result)) {
    ++figures.results;
    if (result.has_error()) ++figures.item_errors;
  }
  const grpc::Status status = reader->Finish();
  figures.read_s = absl::ToDoubleSeconds(absl::Now() - start);
  if (!status.ok()) figures.error = absl::StrCat("ReadBatchResults: ", status.error_message());
  // The job stays at Gemini (the emulator) for a later look; the script deletes nothing.
  return figures;
}

// ---- Straight to Gemini ----

template <typename T>
absl::StatusOr<T> Wait(absl::FunctionRef<void(absl::AnyInvocable<void(absl::StatusOr<T>)>)> call) {
  absl::Notification done;
  absl::StatusOr<T> out = absl::UnknownError("no answer");
  call([&](absl::StatusOr<T> result) {
    out = std::move(result);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

Figures RunGemini() {
  Figures figures;
  auto http = http::MakeHttpClient({});
  if (!http.ok()) {
    figures.error = http.status().ToString();
    return figures;
  }
  gemini::GeminiOptions options;
  options.base_url = absl::GetFlag(FLAGS_gemini_base_url);
  std::string key = absl::GetFlag(FLAGS_api_key);
  if (key.empty() && std::getenv("GEMINI_API_KEY") != nullptr) key = std::getenv("GEMINI_API_KEY");
  options.api_key = key;
  options.default_timeout = std::chrono::minutes(30);
  auto client = gemini::MakeGeminiClient(options, *http);
  auto batches = gemini::MakeRestBatchesStub(options, *http);
  if (!client.ok() || !batches.ok()) {
    figures.error = !client.ok() ? client.status().ToString() : batches.status().ToString();
    return figures;
  }
  gemini::CallOptions call;
  call.deadline = absl::Now() + absl::Minutes(60);

  const std::string path = absl::GetFlag(FLAGS_jsonl);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    figures.error = absl::StrCat("cannot open --jsonl ", path);
    return figures;
  }
  const int64_t size = static_cast<int64_t>(in.tellg());
  in.seekg(0);

  absl::Time start = absl::Now();
  gemini::StartUploadRequest upload;
  upload.size_bytes = size;
  upload.mime_type = "jsonl";
  upload.display_name = "batch-bench requests";
  auto session = Wait<gemini::UploadSession>([&](auto done) {
    (*client)->StartUpload(upload, call, std::move(done));
  });
  if (!session.ok()) {
    figures.error = absl::StrCat("upload start: ", session.status().ToString());
    return figures;
  }
  std::string file_name;
  const int64_t chunk = std::max<int64_t>(session->chunk_granularity, 1);
  for (int64_t offset = 0; offset < size; offset += chunk) {
    const int64_t n = std::min(chunk, size - offset);
    std::string bytes(static_cast<size_t>(n), '\0');
    in.read(bytes.data(), n);
    const bool last = offset + n == size;
    auto sent = Wait<gemini::UploadStatus>([&](auto done) {
      (*client)->UploadChunk(session->upload_url, offset, std::move(bytes), last, call,
                             std::move(done));
    });
    if (!sent.ok()) {
      figures.error = absl::StrCat("upload chunk: ", sent.status().ToString());
      return figures;
    }
    if (last && sent->file) file_name = sent->file->name;
  }
  gemini::CreateBatchRequest create;
  create.display_name = "batch-bench direct";
  create.input_file = file_name;
  auto job = Wait<gemini::BatchJob>([&](auto done) {
    (*batches)->CreateBatch(absl::GetFlag(FLAGS_model), create, call, std::move(done));
  });
  if (!job.ok()) {
    figures.error = absl::StrCat("batchGenerateContent: ", job.status().ToString());
    return figures;
  }
  figures.items = job->stats.request_count;
  figures.create_s = absl::ToDoubleSeconds(absl::Now() - start);

  start = absl::Now();
  const std::string name = job->name;
  while (job->state == "BATCH_STATE_PENDING" || job->state == "BATCH_STATE_RUNNING") {
    absl::SleepFor(absl::Milliseconds(absl::GetFlag(FLAGS_poll_ms)));
    const absl::Time get_start = absl::Now();
    job = Wait<gemini::BatchJob>(
        [&](auto done) { (*batches)->GetBatch(name, call, std::move(done)); });
    figures.last_get_s = absl::ToDoubleSeconds(absl::Now() - get_start);
    if (!job.ok()) {
      figures.error = absl::StrCat("batches.get: ", job.status().ToString());
      return figures;
    }
  }
  figures.wait_s = absl::ToDoubleSeconds(absl::Now() - start);
  figures.state = job->state;
  if (job->state != "BATCH_STATE_SUCCEEDED" || job->responses_file.empty()) {
    figures.error = absl::StrCat("the job ended ", job->state);
    return figures;
  }

  start = absl::Now();
  absl::Notification downloaded;
  absl::Status download_status;
  int64_t lines = 0, errors = 0;
  std::string tail;  // the line being assembled: only its start matters ({"key":..,"error"?)
  (*batches)->DownloadFile(
      job->responses_file, call,
      gemini::DownloadObserver{
          .on_data =
              [&](std::string_view data, absl::AnyInvocable<void()> more) {
                for (char c : data) {
                  if (c == '\n') {
                    ++lines;
                    if (tail.find("\"error\"") != std::string::npos) ++errors;
                    tail.clear();
                  } else if (tail.size() < 200) {
                    tail += c;
                  }
                }
                more();
              },
          .on_done =
              [&](absl::Status status) {
                download_status = std::move(status);
                downloaded.Notify();
              },
      });
  downloaded.WaitForNotification();
  figures.read_s = absl::ToDoubleSeconds(absl::Now() - start);
  figures.results = lines;
  figures.item_errors = errors;
  if (!download_status.ok()) figures.error = absl::StrCat("download: ", download_status.ToString());
  return figures;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "grpc" && mode != "gemini") {
    std::fprintf(stderr, "batch-bench: --mode grpc|gemini\n");
    return 2;
  }
  const int pid = absl::GetFlag(FLAGS_server_pid);
  const int64_t rss_before = pid > 0 ? bench::ReadProcStatus(pid).rss_kb : -1;
  std::atomic<int64_t> rss_peak{rss_before};
  std::atomic<bool> running{true};
  std::thread sampler([&] {
    while (pid > 0 && running.load()) {
      const int64_t rss = bench::ReadProcStatus(pid).rss_kb;
      int64_t seen = rss_peak.load();
      while (rss > seen && !rss_peak.compare_exchange_weak(seen, rss)) {
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  const Figures f = mode == "grpc" ? RunGrpc() : RunGemini();
  running.store(false);
  sampler.join();
  const bench::ProcStatus after = pid > 0 ? bench::ReadProcStatus(pid) : bench::ProcStatus();
  const int64_t rss_after = after.rss_kb;
  const int64_t hwm = after.hwm_kb;

  const double n = static_cast<double>(std::max<int64_t>(f.items, 1));
  std::printf(
      "mode %s: %lld items, %s%s\n"
      "  create  %8.2f s  %8.1f us/item\n"
      "  wait    %8.2f s  (to the end; the GetBatch that ran the lines: %.2f s = %.1f us/item)\n"
      "  results %8.2f s  %8.1f us/item  (%lld messages, %lld item errors)\n",
      mode.c_str(), static_cast<long long>(f.items), f.state.c_str(),
      f.error.empty() ? "" : absl::StrCat(", FAILED: ", f.error).c_str(), f.create_s,
      f.create_s * 1e6 / n, f.wait_s, f.last_get_s, f.last_get_s * 1e6 / n, f.read_s,
      f.read_s * 1e6 / n, static_cast<long long>(f.results),
      static_cast<long long>(f.item_errors));
  if (pid > 0) {
    std::printf("  server RSS %.1f MiB before, %.1f MiB peak (rise %.1f MiB), %.1f MiB after; "
                "VmHWM %.1f MiB\n",
                rss_before / 1024.0, rss_peak.load() / 1024.0,
                (rss_peak.load() - rss_before) / 1024.0, rss_after / 1024.0, hwm / 1024.0);
  }
  std::printf(
      "{\"label\":\"%s\",\"mode\":\"%s\",\"items\":%lld,\"create_s\":%.3f,\"wait_s\":%.3f,"
      "\"last_get_s\":%.3f,\"read_s\":%.3f,\"results\":%lld,\"item_errors\":%lld,"
      "\"rss_before_kib\":%lld,\"rss_peak_kib\":%lld,\"rss_after_kib\":%lld,\"ok\":%s}\n",
      absl::GetFlag(FLAGS_label).c_str(), mode.c_str(), static_cast<long long>(f.items),
      f.create_s, f.wait_s, f.last_get_s, f.read_s, static_cast<long long>(f.results),
      static_cast<long long>(f.item_errors), static_cast<long long>(rss_before),
      static_cast<long long>(rss_peak.load()), static_cast<long long>(rss_after),
      f.error.empty() ? "true" : "false");
  if (!f.error.empty()) std::fprintf(stderr, "batch-bench: %s\n", f.error.c_str());
  return f.error.empty() ? 0 : 1;
}
