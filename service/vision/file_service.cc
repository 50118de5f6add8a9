#include "service/vision/file_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/timestamp.pb.h"
#include "service/common/status_details.h"
#include "service/gemini/async_retry_loop.h"
#include "service/vision/file_id.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

constexpr absl::Duration kFirstPoll = absl::Milliseconds(100);
constexpr absl::Duration kMaxPoll = absl::Seconds(2);
constexpr int kMaxPageSize = 100;
constexpr char kCanonicalFilesPrefix[] = "https://generativelanguage.googleapis.com/v1beta/files/";

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return;
  const int64_t nanos = absl::ToUnixNanos(t);
  out->set_seconds(nanos / 1'000'000'000 - (nanos % 1'000'000'000 < 0 ? 1 : 0));
  out->set_nanos(static_cast<int32_t>(((nanos % 1'000'000'000) + 1'000'000'000) % 1'000'000'000));
}

v1::File::State StateOf(const std::string& state) {
  if (state == "PROCESSING") return v1::File::STATE_PROCESSING;
  if (state == "ACTIVE") return v1::File::STATE_ACTIVE;
  if (state == "FAILED") return v1::File::STATE_FAILED;
  return v1::File::STATE_UNSPECIFIED;
}

// The waits between two polls of a PROCESSING file: 100 ms doubling to 2 s.
std::shared_ptr<gemini::BackoffPolicy> PollBackoff() {
  static const auto* const backoff = new std::shared_ptr<gemini::BackoffPolicy>(
      std::make_shared<gemini::ExponentialBackoff>(kFirstPoll, kMaxPoll));
  return *backoff;
}

// One poll of a file: OK with the file once it left PROCESSING; still PROCESSING is the loop's
// reason to poll again (RetryableFailure, and the caller's answer when the deadline comes first);
// anything else is the caller's answer at once.
absl::Status OnePoll(const std::string& name, absl::StatusOr<gemini::File> file,
                     std::optional<gemini::File>& out) {
  if (!file.ok()) return gemini::FinalFailure(FileErrorForCaller(file.status(), name));
  if (file->state == "FAILED") {
    return gemini::FinalFailure(WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(
            "file ", name, " failed processing at Gemini and cannot be used",
            file->error_message.empty() ? "" : ": ", file->error_message.substr(0, 512))),
        "FILE_FAILED", {{"file", name}}));
  }
  if (file->state == "PROCESSING") {
    return gemini::RetryableFailure(absl::DeadlineExceededError(absl::StrCat(
        "file ", name, " was still PROCESSING at Gemini when the deadline came")));
  }
  out = *std::move(file);
  return absl::OkStatus();
}

// Walks Gemini's file list looking for an ACTIVE file with a given hash.
class HashFinder : public std::enable_shared_from_this<HashFinder> {
 public:
  HashFinder(FilesContext context, std::string hex, int64_t size, absl::Time deadline,
             std::shared_ptr<StagedCall> call,
             absl::AnyInvocable<void(absl::StatusOr<std::optional<gemini::File>>)> done)
      : context_(context),
        hex_(std::move(hex)),
        size_(size),
        deadline_(deadline),
        call_(std::move(call)),
        done_(std::move(done)) {}

  void Page(const std::string& token) {
    if (call_->cancelled()) return Done(absl::CancelledError("cancelled"));
    auto self = shared_from_this();
    call_->SetStage(context_.runtime->gemini().ListFiles(
        kMaxPageSize, token, gemini::CallOptions{.deadline = deadline_, .record = context_.record},
        [self](absl::StatusOr<gemini::ListFilesResponse> page) { self->OnPage(std::move(page)); }));
  }

 private:
  void OnPage(absl::StatusOr<gemini::ListFilesResponse> page) {
    if (call_->cancelled()) return Done(absl::CancelledError("cancelled"));
    if (!page.ok()) return Done(std::optional<gemini::File>());  // lookup failed: upload
    for (gemini::File& file : page->files) {
      if (file.state == "ACTIVE" && FileHolds(file, hex_, size_, context_.runtime->options().file_tag_key) &&
          FileVisibleTo(file.name, context_.owner_tag)) {
        context_.runtime->hashes().Put(context_.owner_tag, hex_, file);
        return Done(std::optional<gemini::File>(std::move(file)));
      }
    }
    if (page->next_page_token.empty() || ++pages_ >= kMaxDedupePages) {
      return Done(std::optional<gemini::File>());
    }
    Page(page->next_page_token);
  }

  void Done(absl::StatusOr<std::optional<gemini::File>> result) {
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  const FilesContext context_;
  const std::string hex_;
  const int64_t size_;
  const absl::Time deadline_;
  std::shared_ptr<StagedCall> call_;
  absl::AnyInvocable<void(absl::StatusOr<std::optional<gemini::File>>)> done_;
  int pages_ = 0;
};


// Where a filtered ListFiles goes on: a page of Gemini's list (its token; "" for the first page)
// and how many of that page's files were already looked at. The caller sees it as an opaque,
// web-safe token.
struct ListPosition {
  std::string upstream_token;
  int skip = 0;
};

constexpr char kListTokenPrefix[] = "vg1.";

std::string EncodeListPosition(const ListPosition& position) {
  std::string token;
  absl::WebSafeBase64Escape(
      absl::StrCat(kListTokenPrefix, position.skip, ".", position.upstream_token), &token);
  return token;
}

absl::StatusOr<ListPosition> DecodeListPosition(const std::string& token) {
  ListPosition position;
  if (token.empty()) return position;
  std::string text;
  const absl::Status bad = absl::InvalidArgumentError(
      "page_token: not a next_page_token from ListFiles (with authentication on, page tokens "
      "are the gateway's own)");
  if (!absl::WebSafeBase64Unescape(token, &text) || !absl::StartsWith(text, kListTokenPrefix)) {
    return bad;
  }
  std::string_view rest = std::string_view(text).substr(sizeof(kListTokenPrefix) - 1);
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(rest.data(), dot), &position.skip) ||
      position.skip < 0 || position.skip >= kMaxPageSize) {
    return bad;
  }
  position.upstream_token = std::string(rest.substr(dot + 1));
  return position;
}

// ListFiles with isolation: reads Gemini's pages of kMaxPageSize and keeps the files visible to
// the caller, until page_size are found, the list ends, or kMaxListScanPages were read.
class OwnFilesLister : public std::enable_shared_from_this<OwnFilesLister> {
 public:
  OwnFilesLister(FilesContext context, int page_size, ListPosition start, absl::Time deadline,
                 std::shared_ptr<StagedCall> call,
                 absl::AnyInvocable<void(absl::StatusOr<v1::ListFilesResponse>)> done)
      : context_(std::move(context)),
        page_size_(page_size),
        position_(std::move(start)),
        deadline_(deadline),
        call_(std::move(call)),
        done_(std::move(done)) {}

  void Page() {
    if (call_->cancelled()) return Done(absl::CancelledError("cancelled"));
    auto self = shared_from_this();
    call_->SetStage(context_.runtime->gemini().ListFiles(
        kMaxPageSize, position_.upstream_token,
        gemini::CallOptions{.deadline = deadline_, .record = context_.record},
        [self](absl::StatusOr<gemini::ListFilesResponse> page) { self->OnPage(std::move(page)); }));
  }

 private:
  void OnPage(absl::StatusOr<gemini::ListFilesResponse> page) {
    if (!page.ok()) return Done(ToCallerStatus(page.status()));
    const std::size_t count = page->files.size();
    for (std::size_t i = static_cast<std::size_t>(position_.skip); i < count; ++i) {
      if (!FileVisibleTo(page->files[i].name, context_.owner_tag)) continue;
      *out_.add_files() = ToV1File(page->files[i], context_.runtime->options().file_tag_key);
      if (out_.files_size() < page_size_) continue;
      // The page is full: go on after this file next time.
      if (i + 1 < count) {
        return Finish(ListPosition{position_.upstream_token, static_cast<int>(i + 1)});
      }
      break;
    }
    if (page->next_page_token.empty()) return Finish(std::nullopt);
    position_ = ListPosition{page->next_page_token, 0};
    if (out_.files_size() >= page_size_ || ++pages_ >= kMaxListScanPages) {
      return Finish(position_);
    }
    Page();
  }

  void Finish(std::optional<ListPosition> next) {
    call_->Clear();
    if (next) out_.set_next_page_token(EncodeListPosition(*next));
    Done(std::move(out_));
  }

  void Done(absl::StatusOr<v1::ListFilesResponse> result) {
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  const FilesContext context_;
  const int page_size_;
  ListPosition position_;
  const absl::Time deadline_;
  std::shared_ptr<StagedCall> call_;
  absl::AnyInvocable<void(absl::StatusOr<v1::ListFilesResponse>)> done_;
  v1::ListFilesResponse out_;
  int pages_ = 0;
};

}  // namespace

FilesRuntime::FilesRuntime(std::shared_ptr<gemini::FilesStub> gemini, std::shared_ptr<Timer> timer,
                           VisionOptions options, ThreadPool* cpu, DetachedCalls* detached)
    : gemini_(std::move(gemini)),
      timer_(std::move(timer)),
      options_(std::move(options)),
      cpu_(cpu),
      detached_(detached),
      hashes_(options_.file_hash_ttl, *timer_),
      filling_upload_chunks_(options_.max_filling_upload_chunks) {}

void StagedCall::SetStage(std::shared_ptr<gemini::PendingCall> stage) {
  bool cancel;
  {
    absl::MutexLock lock(&mu_);
    stage_ = stage;
    cancel = cancelled_;
  }
  if (cancel && stage) stage->Cancel();
}

void StagedCall::Clear() {
  std::shared_ptr<gemini::PendingCall> stage;
  absl::MutexLock lock(&mu_);
  stage.swap(stage_);
}

void StagedCall::Cancel() {
  std::shared_ptr<gemini::PendingCall> stage;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    stage = stage_;
  }
  if (stage) stage->Cancel();
}

bool StagedCall::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

std::optional<gemini::File> FileHashCache::Find(const std::string& owner_tag,
                                                const std::string& sha256_hex) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(absl::StrCat(owner_tag, "/", sha256_hex));
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= clock_.Now()) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.file;
}

void FileHashCache::Put(const std::string& owner_tag, const std::string& sha256_hex,
                        const gemini::File& file) {
  if (ttl_ <= absl::ZeroDuration()) return;
  absl::MutexLock lock(&mu_);
  // Bounded: expired entries go first, then everything (a cache, not a store).
  if (entries_.size() >= 10000) {
    const absl::Time now = clock_.Now();
    absl::erase_if(entries_, [now](const auto& entry) { return entry.second.expires <= now; });
    if (entries_.size() >= 10000) entries_.clear();
  }
  entries_[absl::StrCat(owner_tag, "/", sha256_hex)] = Entry{file, clock_.Now() + ttl_};
}

void FileHashCache::Forget(const std::string& name) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(entries_, [&name](const auto& entry) { return entry.second.file.name == name; });
}

bool FileHolds(const gemini::File& file, std::string_view sha256_hex, int64_t size_bytes,
               std::string_view tag_key) {
  if (file.size_bytes == size_bytes && !file.sha256_hash.empty() &&
      file.sha256_hash == gemini::Sha256HashFromHex(std::string(sha256_hex))) {
    return true;
  }
  const DisplayNameInfo tag = DecodeDisplayName(file.display_name, file.name, tag_key);
  return !tag.source_sha256.empty() && tag.source_sha256 == sha256_hex &&
         tag.source_size == size_bytes;
}

v1::File ToV1File(const gemini::File& file, std::string_view tag_key) {
  v1::File out;
  out.set_name(file.name);
  out.set_uri(file.uri);
  DisplayNameInfo display = DecodeDisplayName(file.display_name, file.name, tag_key);
  out.set_display_name(std::move(display.display_name));
  out.set_source_sha256(std::move(display.source_sha256));
  out.set_mime_type(file.mime_type);
  out.set_size_bytes(file.size_bytes);
  out.set_sha256(gemini::HexFromSha256Hash(file.sha256_hash));
  out.set_state(StateOf(file.state));
  SetTimestamp(file.create_time, out.mutable_create_time());
  SetTimestamp(file.update_time, out.mutable_update_time());
  SetTimestamp(file.expiration_time, out.mutable_expire_time());
  if (file.state == "FAILED") out.set_error_message(file.error_message.substr(0, 1024));
  const FileIdInfo info = DecodeFileId(file.name);
  out.set_width(info.width);
  out.set_height(info.height);
  return out;
}

absl::StatusOr<std::string> FileNameOf(const std::string& reference, const std::string& field,
                                       const VisionOptions& options) {
  std::string_view rest = reference;
  const std::string own_prefix = absl::StrCat(options.files_base_uri, "/");
  if (rest.starts_with(own_prefix)) {
    rest.remove_prefix(own_prefix.size());
  } else if (rest.starts_with(kCanonicalFilesPrefix)) {
    // The URI Gemini hands out for a file (also when the gateway talks to an emulator).
    rest.remove_prefix(std::string_view(kCanonicalFilesPrefix).size() - 6);
  }
  std::string name(rest);
  if (gemini::FileIdOf(name).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be \"files/<id>\" as returned by Upload (id: 1 to 40 lowercase letters, "
               "digits or '-') or this gateway's Gemini file URI ",
        own_prefix, "files/<id>; other URLs are not forwarded"));
  }
  return name;
}

bool FileVisibleTo(std::string_view name, std::string_view owner_tag) {
  return owner_tag.empty() || DecodeFileId(name).owner_tag == owner_tag;
}

absl::Status FileNotFound(const std::string& name) {
  return WithErrorInfo(
      absl::NotFoundError(absl::StrCat(
          "file ", name,
          " not found: it does not exist, is not yours, or has expired (files expire 48 hours "
          "after upload)")),
      "FILE_NOT_FOUND", {{"file", name}});
}

absl::Status FileErrorForCaller(absl::Status upstream, const std::string& name) {
  // Gemini answers 403 or 404 for a file that is gone or belongs to another key (a bad key is a
  // 400 API_KEY_INVALID): look at its code before the error table turns 403 into
  // UPSTREAM_AUTH_FAILED.
  if (upstream.code() == absl::StatusCode::kNotFound ||
      upstream.code() == absl::StatusCode::kPermissionDenied) {
    return FileNotFound(name);
  }
  return ToCallerStatus(std::move(upstream));
}

void AwaitActiveFile(const FilesContext& context, const std::string& name, absl::Time deadline,
                     std::shared_ptr<StagedCall> call,
                     absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done) {
  if (!FileVisibleTo(name, context.owner_tag)) {
    done(FileNotFound(name));
    return;
  }
  // Polled on the one retry loop: each attempt is a GetFile (itself retried by the retrying files
  // stub when it fails transiently); only PROCESSING makes the loop poll again, with backoff,
  // until the deadline. A cancel ends the wait at once.
  auto file = std::make_shared<std::optional<gemini::File>>();
  auto loop = gemini::AsyncRetryLoop::Create(
      gemini::RetryLoopOptions{
          .retry = gemini::RetryPolicy{.max_attempts = 0,
                                       .retryable = [](const absl::Status&) { return false; }},
          .backoff = PollBackoff(),
          .timer = &context.runtime->timer(),
      },
      gemini::CallOptions{.deadline = deadline},
      [runtime = context.runtime, name, record = context.record, deadline, file](
          int, bool, gemini::AsyncRetryLoop::AttemptDone attempt_done) {
        return runtime->gemini().GetFile(
            name, gemini::CallOptions{.deadline = deadline, .record = record},
            [name, file, attempt_done = std::move(attempt_done)](
                absl::StatusOr<gemini::File> got) mutable {
              attempt_done(OnePoll(name, std::move(got), *file));
            });
      },
      [weak_call = std::weak_ptr<StagedCall>(call), file,
       done = std::move(done)](absl::Status status) mutable {
        if (auto staged = weak_call.lock()) staged->Clear();
        if (!status.ok()) return done(std::move(status));
        done(**std::move(file));
      });
  call->SetStage(loop);  // cancelled already: the loop ends before its first poll
  loop->Run();
}

void FindFileByHash(const FilesContext& context, const std::string& sha256_hex,
                    int64_t size_bytes, absl::Time deadline, std::shared_ptr<StagedCall> call,
                    absl::AnyInvocable<void(absl::StatusOr<std::optional<gemini::File>>)> done) {
  std::optional<gemini::File> cached = context.runtime->hashes().Find(context.owner_tag, sha256_hex);
  // The cache holds only files found or uploaded for this hash; checked again all the same.
  if (cached && FileHolds(*cached, sha256_hex, size_bytes, context.runtime->options().file_tag_key)) {
    done(std::move(cached));
    return;
  }
  std::make_shared<HashFinder>(context, sha256_hex, size_bytes, deadline, std::move(call),
                               std::move(done))
      ->Page("");
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartGetFile(
    const FilesContext& context, const v1::GetFileRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::File>)> done) {
  auto name = FileNameOf(request.name(), "name", context.runtime->options());
  if (!name.ok()) return name.status();
  if (!FileVisibleTo(*name, context.owner_tag)) return FileNotFound(*name);
  return context.runtime->gemini().GetFile(
      *name, gemini::CallOptions{.deadline = deadline, .record = context.record},
      [name = *name, tag_key = context.runtime->options().file_tag_key,
       done = std::move(done)](absl::StatusOr<gemini::File> file) mutable {
        if (!file.ok()) return done(FileErrorForCaller(file.status(), name));
        done(ToV1File(*file, tag_key));
      });
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartListFiles(
    const FilesContext& context, const v1::ListFilesRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::ListFilesResponse>)> done) {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be 0 (default 10) to ", kMaxPageSize));
  }
  if (request.page_token().size() > 1024) {
    return absl::InvalidArgumentError("page_token: at most 1024 characters");
  }
  const int page_size = request.page_size() == 0 ? 10 : request.page_size();
  if (!context.owner_tag.empty()) {
    absl::StatusOr<ListPosition> start = DecodeListPosition(request.page_token());
    if (!start.ok()) return start.status();
    auto call = std::make_shared<StagedCall>();
    std::make_shared<OwnFilesLister>(context, page_size, *std::move(start), deadline, call,
                                     std::move(done))
        ->Page();
    return call;
  }
  return context.runtime->gemini().ListFiles(
      page_size, request.page_token(),
      gemini::CallOptions{.deadline = deadline, .record = context.record},
      [tag_key = context.runtime->options().file_tag_key,
       done = std::move(done)](absl::StatusOr<gemini::ListFilesResponse> page) mutable {
        if (!page.ok()) return done(ToCallerStatus(page.status()));
        v1::ListFilesResponse out;
        for (const gemini::File& file : page->files) {
          *out.add_files() = ToV1File(file, tag_key);
        }
        out.set_next_page_token(page->next_page_token);
        done(std::move(out));
      });
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartDeleteFile(
    const FilesContext& context, const v1::DeleteFileRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::Status)> done) {
  auto name = FileNameOf(request.name(), "name", context.runtime->options());
  if (!name.ok()) return name.status();
  if (!FileVisibleTo(*name, context.owner_tag)) return FileNotFound(*name);
  return context.runtime->gemini().DeleteFile(
      *name, gemini::CallOptions{.deadline = deadline, .record = context.record},
      [name = *name, runtime = context.runtime, done = std::move(done)](absl::Status status) mutable {
        runtime->hashes().Forget(name);
        if (!status.ok()) return done(FileErrorForCaller(std::move(status), name));
        done(absl::OkStatus());
      });
}

}  // namespace vision_gateway::vision
