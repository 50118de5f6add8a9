// Scripted fakes of the Batch API stub and of the Files API stub for batch tests: jobs held in a
// map, a responses file served in pieces of a chosen size (paced by the reader's `more`), and a
// Files stub that stores resumable uploads whole. Every completion runs on the fake's own thread,
// as the real client answers from its I/O threads.
#ifndef VISION_GATEWAY_TESTS_TESTING_FAKE_BATCHES_STUB_H_
#define VISION_GATEWAY_TESTS_TESTING_FAKE_BATCHES_STUB_H_

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "service/common/thread_pool.h"
#include "service/gemini/batches_stub.h"
#include "service/gemini/files_stub.h"

namespace vision_gateway::testing {

class FakeBatchesStub : public gemini::BatchesStub {
 public:
  struct Call : gemini::PendingCall {
    std::atomic<bool> cancelled{false};
    void Cancel() override { cancelled = true; }
  };

  void PutJob(gemini::BatchJob job) {
    absl::MutexLock lock(&mu_);
    jobs_[job.name] = std::move(job);
  }
  // The bytes of every responses file, served `piece_size` bytes at a time.
  void SetResponses(std::string bytes, std::size_t piece_size) {
    absl::MutexLock lock(&mu_);
    responses_ = std::move(bytes);
    piece_size_ = piece_size;
  }
  int pieces_sent() const { return pieces_sent_.load(); }
  std::vector<std::pair<std::string, gemini::CreateBatchRequest>> created() {
    absl::MutexLock lock(&mu_);
    return created_;
  }
  std::vector<std::string> cancelled_or_deleted() {
    absl::MutexLock lock(&mu_);
    return acted_;
  }
  // Waits for the fake's thread to run what it was given.
  void Drain() {
    absl::Notification idle;
    Post([&idle] { idle.Notify(); });
    idle.WaitForNotification();
  }

  std::shared_ptr<gemini::PendingCall> CreateBatch(
      const std::string& model, gemini::CreateBatchRequest request, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::BatchJob>)> done) override {
    gemini::BatchJob job;
    {
      absl::MutexLock lock(&mu_);
      job.name = absl::StrCat("batches/job", created_.size() + 1);
      job.display_name = request.display_name;
      job.model = absl::StrCat("models/", model);
      job.state = "BATCH_STATE_PENDING";
      job.input_file = request.input_file;
      created_.emplace_back(model, std::move(request));
      jobs_[job.name] = job;
    }
    Post([job, done = std::move(done)]() mutable { done(job); });
    return std::make_shared<Call>();
  }

  std::shared_ptr<gemini::PendingCall> GetBatch(
      const std::string& name, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::BatchJob>)> done) override {
    absl::StatusOr<gemini::BatchJob> job = Find(name);
    Post([job = std::move(job), done = std::move(done)]() mutable { done(std::move(job)); });
    return std::make_shared<Call>();
  }

  std::shared_ptr<gemini::PendingCall> ListBatches(
      int page_size, const std::string& page_token, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::ListBatchesResponse>)> done) override {
    gemini::ListBatchesResponse page;
    {
      absl::MutexLock lock(&mu_);
      std::size_t start = page_token.empty() ? 0 : std::stoul(page_token);
      std::size_t i = 0;
      for (const auto& [name, job] : jobs_) {
        if (i >= start && page.batches.size() < static_cast<std::size_t>(page_size)) {
          page.batches.push_back(job);
        }
        ++i;
      }
      if (start + page.batches.size() < jobs_.size()) {
        page.next_page_token = std::to_string(start + page.batches.size());
      }
    }
    Post([page = std::move(page), done = std::move(done)]() mutable { done(std::move(page)); });
    return std::make_shared<Call>();
  }

  std::shared_ptr<gemini::PendingCall> CancelBatch(const std::string& name, gemini::CallOptions,
                                                   absl::AnyInvocable<void(absl::Status)> done)
      override {
    return Act("cancel " + name, std::move(done));
  }
  std::shared_ptr<gemini::PendingCall> DeleteBatch(const std::string& name, gemini::CallOptions,
                                                   absl::AnyInvocable<void(absl::Status)> done)
      override {
    return Act("delete " + name, std::move(done));
  }

  std::shared_ptr<gemini::PendingCall> DownloadFile(const std::string& name, gemini::CallOptions,
                                                    gemini::DownloadObserver observer) override {
    auto call = std::make_shared<Call>();
    auto download = std::make_shared<Download>();
    download->observer = std::move(observer);
    download->call = call;
    {
      absl::MutexLock lock(&mu_);
      download->bytes = responses_;
      download->piece_size = std::max<std::size_t>(piece_size_, 1);
      downloads_.push_back(name);
    }
    Post([this, download] { Deliver(download); });
    return call;
  }

  std::vector<std::string> downloads() {
    absl::MutexLock lock(&mu_);
    return downloads_;
  }

 private:
  struct Download {
    gemini::DownloadObserver observer;
    std::shared_ptr<Call> call;
    std::string bytes;
    std::size_t piece_size = 1;
    std::size_t offset = 0;
    bool done = false;
  };

  // On the fake's thread: the next piece, or the end.
  void Deliver(const std::shared_ptr<Download>& download) {
    if (download->done) return;
    if (download->call->cancelled) {
      download->done = true;
      download->observer.on_done(absl::CancelledError("cancelled"));
      download->observer = gemini::DownloadObserver();
      return;
    }
    if (download->offset >= download->bytes.size()) {
      download->done = true;
      download->observer.on_done(absl::OkStatus());
      download->observer = gemini::DownloadObserver();
      return;
    }
    const std::size_t take =
        std::min(download->piece_size, download->bytes.size() - download->offset);
    const std::string piece = download->bytes.substr(download->offset, take);
    download->offset += take;
    pieces_sent_.fetch_add(1);
    download->observer.on_data(piece, [this, download] {
      Post([this, download] { Deliver(download); });
    });
  }

  absl::StatusOr<gemini::BatchJob> Find(const std::string& name) {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(name);
    if (it == jobs_.end()) return absl::NotFoundError("Gemini: batch not found");
    return it->second;
  }

  std::shared_ptr<gemini::PendingCall> Act(std::string what,
                                           absl::AnyInvocable<void(absl::Status)> done) {
    {
      absl::MutexLock lock(&mu_);
      acted_.push_back(std::move(what));
    }
    Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return std::make_shared<Call>();
  }

  void Post(absl::AnyInvocable<void()> fn) { pool_.ScheduleContinuation(std::move(fn)); }

  absl::Mutex mu_;
  std::map<std::string, gemini::BatchJob> jobs_ ABSL_GUARDED_BY(mu_);
  std::string responses_ ABSL_GUARDED_BY(mu_);
  std::size_t piece_size_ ABSL_GUARDED_BY(mu_) = 64;
  std::vector<std::pair<std::string, gemini::CreateBatchRequest>> created_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> acted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> downloads_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> pieces_sent_{0};
  ThreadPool pool_{1};  // last: joined first, while the rest is alive
};

// A Files stub that keeps uploads whole: every upload is finalized into an ACTIVE file.
class FakeFilesStub : public gemini::FilesStub {
 public:
  struct Call : gemini::PendingCall {
    void Cancel() override {}
  };

  std::map<std::string, std::string> uploaded() {
    absl::MutexLock lock(&mu_);
    return uploaded_;
  }
  std::map<std::string, gemini::StartUploadRequest> starts() {
    absl::MutexLock lock(&mu_);
    return starts_;
  }

  std::shared_ptr<gemini::PendingCall> StartUpload(
      gemini::StartUploadRequest request, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadSession>)> done) override {
    const std::string url = absl::StrCat("http://fake/upload/", request.name);
    {
      absl::MutexLock lock(&mu_);
      sessions_[url] = request.name;
      starts_[request.name] = request;
      uploaded_[request.name] = "";
    }
    Post([url, done = std::move(done)]() mutable {
      done(gemini::UploadSession{.upload_url = url, .chunk_granularity = 256});
    });
    return std::make_shared<Call>();
  }

  std::shared_ptr<gemini::PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, gemini::ChunkBytes bytes, bool finalize,
      gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadStatus>)> done) override {
    gemini::UploadStatus status;
    {
      absl::MutexLock lock(&mu_);
      const std::string name = sessions_[upload_url];
      std::string& stored = uploaded_[name];
      if (static_cast<int64_t>(stored.size()) == offset) stored.append(bytes.view());
      status.size_received = static_cast<int64_t>(stored.size());
      status.status = finalize ? "final" : "active";
      if (finalize) status.file = FileLocked(name);
    }
    Post([status, done = std::move(done)]() mutable { done(status); });
    return std::make_shared<Call>();
  }

  std::shared_ptr<gemini::PendingCall> QueryUpload(
      const std::string&, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadStatus>)> done) override {
    Post([done = std::move(done)]() mutable { done(absl::UnavailableError("no query")); });
    return std::make_shared<Call>();
  }
  std::shared_ptr<gemini::PendingCall> CancelUpload(
      const std::string&, gemini::CallOptions, absl::AnyInvocable<void(absl::Status)> done)
      override {
    Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return std::make_shared<Call>();
  }
  std::shared_ptr<gemini::PendingCall> GetFile(
      const std::string& name, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done) override {
    absl::StatusOr<gemini::File> file = absl::NotFoundError("Gemini: no such file");
    {
      absl::MutexLock lock(&mu_);
      if (uploaded_.count(name) > 0) file = FileLocked(name);
    }
    Post([file = std::move(file), done = std::move(done)]() mutable { done(std::move(file)); });
    return std::make_shared<Call>();
  }
  std::shared_ptr<gemini::PendingCall> ListFiles(
      int, const std::string&, gemini::CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<gemini::ListFilesResponse>)> done) override {
    Post([done = std::move(done)]() mutable { done(gemini::ListFilesResponse()); });
    return std::make_shared<Call>();
  }
  std::shared_ptr<gemini::PendingCall> DeleteFile(const std::string&, gemini::CallOptions,
                                                  absl::AnyInvocable<void(absl::Status)> done)
      override {
    Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return std::make_shared<Call>();
  }

 private:
  gemini::File FileLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    gemini::File file;
    file.name = name;
    file.mime_type = starts_[name].mime_type;
    file.size_bytes = static_cast<int64_t>(uploaded_[name].size());
    file.state = "ACTIVE";
    file.uri = absl::StrCat("https://generativelanguage.googleapis.com/v1beta/", name);
    return file;
  }

  void Post(absl::AnyInvocable<void()> fn) { pool_.ScheduleContinuation(std::move(fn)); }

  absl::Mutex mu_;
  std::map<std::string, std::string> sessions_ ABSL_GUARDED_BY(mu_);  // url → file name
  std::map<std::string, std::string> uploaded_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, gemini::StartUploadRequest> starts_ ABSL_GUARDED_BY(mu_);
  ThreadPool pool_{1};
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_FAKE_BATCHES_STUB_H_
