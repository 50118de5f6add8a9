// upload-bench: uploads one file N times at once, through vision-server (client-streaming Upload)
// or straight to a Gemini endpoint (the resumable protocol in 8 MiB chunks, as the SDKs do), and
// reports throughput and, with --server_pid, the server's resident memory before and at peak.
//   upload-bench --mode grpc --target 127.0.0.1:PORT --file F [--concurrency N] [--server_pid P]
//   upload-bench --mode gemini --gemini_base_url http://127.0.0.1:PORT --api_key K --file F ...
// The file is streamed from disk in both modes (1 MiB gRPC messages; 8 MiB upstream chunks).
#include <unistd.h>

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
#include "client/vision_client.h"
#include "service/gemini/gemini_client.h"
#include "service/http/http_client.h"

ABSL_FLAG(std::string, mode, "grpc", "grpc (through vision-server) | gemini (straight upstream).");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "--mode grpc: vision-server host:port.");
ABSL_FLAG(std::string, gemini_base_url, "", "--mode gemini: scheme://host:port.");
ABSL_FLAG(std::string, api_key, "", "--mode gemini: API key (or $GEMINI_API_KEY).");
ABSL_FLAG(std::string, file, "", "The file to upload (e.g. a 1 GiB file in /tmp).");
ABSL_FLAG(int, concurrency, 1, "Uploads of the file at the same time.");
ABSL_FLAG(int, server_pid, 0, "Sample this process's VmRSS every 50 ms.");
ABSL_FLAG(std::string, label, "", "Label of the JSON result line.");

namespace {

using namespace vision_gateway;  // NOLINT: a tool's main file


// One resumable upload straight to Gemini, reading 8 MiB chunks from disk one at a time.
absl::Status DirectUpload(gemini::GeminiClient& gemini, const std::string& path, int64_t size) {
  const absl::Time deadline = absl::Now() + absl::Minutes(30);
  absl::Notification started;
  absl::StatusOr<gemini::UploadSession> session;
  gemini::StartUploadRequest request;
  request.size_bytes = size;
  request.mime_type = "image/png";
  gemini::CallOptions options;
  options.deadline = deadline;
  gemini.StartUpload(request, options,
                     [&](absl::StatusOr<gemini::UploadSession> s) {
                       session = std::move(s);
                       started.Notify();
                     });
  started.WaitForNotification();
  if (!session.ok()) return session.status();
  std::ifstream in(path, std::ios::binary);
  const int64_t chunk = session->chunk_granularity;
  for (int64_t offset = 0; offset < size; offset += chunk) {
    const int64_t n = std::min(chunk, size - offset);
    std::string bytes(static_cast<size_t>(n), '\0');
    in.read(bytes.data(), n);
    const bool last = offset + n == size;
    absl::Notification sent;
    absl::Status status;
    gemini.UploadChunk(session->upload_url, offset, std::move(bytes), last, options,
                       [&](absl::StatusOr<gemini::UploadStatus> s) {
                         status = s.status();
                         sent.Notify();
                       });
    sent.WaitForNotification();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_file);
  std::ifstream probe(path, std::ios::binary | std::ios::ate);
  if (!probe) {
    std::fprintf(stderr, "upload-bench: cannot open --file %s\n", path.c_str());
    return 2;
  }
  const int64_t size = static_cast<int64_t>(probe.tellg());
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const int pid = absl::GetFlag(FLAGS_server_pid);

  std::shared_ptr<gemini::GeminiClient> gemini;
  std::unique_ptr<client::VisionClient> grpc_client;
  if (mode == "gemini") {
    auto http = http::MakeHttpClient({});
    if (!http.ok()) return 1;
    gemini::GeminiOptions options;
    options.base_url = absl::GetFlag(FLAGS_gemini_base_url);
    std::string key = absl::GetFlag(FLAGS_api_key);
    if (key.empty() && std::getenv("GEMINI_API_KEY") != nullptr) key = std::getenv("GEMINI_API_KEY");
    options.api_key = key;
    options.default_timeout = std::chrono::minutes(30);
    auto made = gemini::MakeGeminiClient(options, *http);
    if (!made.ok()) {
      std::fprintf(stderr, "upload-bench: %s\n", made.status().ToString().c_str());
      return 2;
    }
    gemini = *std::move(made);
  } else if (mode == "grpc") {
    grpc_client = std::make_unique<client::VisionClient>(client::ClientOptions{
        .target = absl::GetFlag(FLAGS_target), .timeout = absl::Minutes(30)});
  } else {
    std::fprintf(stderr, "upload-bench: --mode grpc|gemini\n");
    return 2;
  }

  const int64_t rss_before = pid > 0 ? bench::ReadProcStatus(pid).rss_kb : -1;
  std::atomic<int64_t> rss_peak{rss_before};
  std::atomic<bool> running{true};
  std::thread sampler([&] {
    while (pid > 0 && running.load()) {
      const int64_t rss = bench::ReadProcStatus(pid).rss_kb;
      int64_t seen = rss_peak.load();
      while (rss > seen && !rss_peak.compare_exchange_weak(seen, rss)) {
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });

  std::atomic<int> failures{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int i = 0; i < concurrency; ++i) {
    workers.emplace_back([&] {
      absl::Status status;
      if (gemini) {
        status = DirectUpload(*gemini, path, size);
      } else {
        client::UploadOptions options;
        options.send_sha256 = false;
        auto file = grpc_client->UploadFile(path, options);
        status = file.status();
      }
      if (!status.ok()) {
        ++failures;
        std::fprintf(stderr, "upload-bench: upload failed: %s\n", status.ToString().c_str());
      }
    });
  }
  for (auto& worker : workers) worker.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  running.store(false);
  sampler.join();

  const double mib = static_cast<double>(size) * concurrency / (1 << 20);
  std::printf(
      "mode %s: %d x %.0f MiB in %.2f s = %.1f MiB/s%s; server RSS %.1f MiB before, %.1f MiB "
      "peak (rise %.1f MiB)\n",
      mode.c_str(), concurrency, static_cast<double>(size) / (1 << 20), seconds, mib / seconds,
      failures.load() ? absl::StrCat(", ", failures.load(), " FAILED").c_str() : "",
      rss_before / 1024.0, rss_peak.load() / 1024.0, (rss_peak.load() - rss_before) / 1024.0);
  std::printf(
      "{\"label\":\"%s\",\"mode\":\"%s\",\"concurrency\":%d,\"bytes\":%lld,\"seconds\":%.3f,"
      "\"mib_per_s\":%.1f,\"failures\":%d,\"rss_before_kib\":%lld,\"rss_peak_kib\":%lld}\n",
      absl::GetFlag(FLAGS_label).c_str(), mode.c_str(), concurrency,
      static_cast<long long>(size), seconds, mib / seconds, failures.load(),
      static_cast<long long>(rss_before), static_cast<long long>(rss_peak.load()));
  return failures.load() == 0 ? 0 : 1;
}
