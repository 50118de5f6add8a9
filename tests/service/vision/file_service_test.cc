// File isolation in the vision layer (issue #11): which files a call with an owner tag may see,
// get, delete, use, list and dedupe against, driven through a fake Gemini client.
#include "service/vision/file_service.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"
#include "service/gemini/sha256.h"
#include "service/vision/file_id.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/fake_timer.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::vision {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::FakeTimer;
using ::vision_gateway::testing::StatusIs;

const std::string kAlice = OwnerTagOf("alice");
const std::string kBob = OwnerTagOf("bob");

std::string FileOf(const std::string& owner_tag) {
  return absl::StrCat("files/", NewFileId(64, 48, owner_tag));
}

constexpr int64_t kFileSize = 1234;

gemini::File ActiveFile(const std::string& name, const std::string& hash = "") {
  gemini::File file;
  file.name = name;
  file.uri = "https://example.test/v1beta/" + name;
  file.mime_type = "image/png";
  file.state = "ACTIVE";
  file.sha256_hash = hash;
  file.size_bytes = kFileSize;
  return file;
}

std::string ReasonOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  return GetDetail(status, info) ? info.reason() : "";
}

class FileServiceTest : public ::testing::Test {
 protected:
  FilesContext Context(const std::string& owner_tag) {
    if (runtime_ == nullptr) {
      runtime_ = std::make_shared<const FilesRuntime>(gemini_, timer_, options_, nullptr, nullptr);
    }
    return FilesContext{.runtime = runtime_, .owner_tag = owner_tag};
  }

  // Lists with `context` and answers each upstream ListFiles call from `pages` (keyed by the
  // page token asked for), until the call is done.
  absl::StatusOr<v1::ListFilesResponse> List(
      const FilesContext& context, int page_size, const std::string& token,
      const std::map<std::string, gemini::ListFilesResponse>& pages) {
    v1::ListFilesRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    std::optional<absl::StatusOr<v1::ListFilesResponse>> result;
    const std::size_t before = gemini_->calls().size();
    auto started = StartListFiles(context, request, absl::InfiniteFuture(),
                                  [&result](absl::StatusOr<v1::ListFilesResponse> r) {
                                    result = std::move(r);
                                  });
    if (!started.ok()) return started.status();
    for (std::size_t i = before; !result.has_value(); ++i) {
      auto calls = gemini_->calls();
      if (i >= calls.size()) return absl::InternalError("no upstream call and no result");
      auto& call = calls[i];
      EXPECT_EQ(call->method, "ListFiles");
      asked_.push_back(call->page_token);
      page_sizes_.push_back(call->page_size);
      auto page = pages.find(call->page_token);
      if (page == pages.end()) return absl::InternalError("unexpected page token");
      call->list_done(page->second);
    }
    return *std::move(result);
  }

  // Calls a test left open hold the code under test, which holds this shared fake.
  ~FileServiceTest() override { gemini_->ReleaseCallbacks(); }

  std::shared_ptr<FakeGeminiClient> gemini_ = std::make_shared<FakeGeminiClient>();
  std::shared_ptr<FakeTimer> timer_ = std::make_shared<FakeTimer>();
  std::shared_ptr<const FilesRuntime> runtime_;  // made by the first Context()
  VisionOptions options_;
  std::vector<std::string> asked_;
  std::vector<int> page_sizes_;
};

TEST(FileVisibleToTest, OwnerTagDecides) {
  const std::string alices = FileOf(kAlice);
  EXPECT_TRUE(FileVisibleTo(alices, kAlice));
  EXPECT_TRUE(FileVisibleTo(alices.substr(6), kAlice));  // bare id
  EXPECT_FALSE(FileVisibleTo(alices, kBob));
  // Files without an owner tag: the gateway's own from before authentication, or from elsewhere.
  EXPECT_FALSE(FileVisibleTo(FileOf(""), kAlice));
  EXPECT_FALSE(FileVisibleTo("files/abc123", kAlice));
  // A foreign id that merely contains the tag is not the caller's.
  EXPECT_FALSE(FileVisibleTo(absl::StrCat("files/x-", kAlice, "-y"), kAlice));
  // Authentication off: everything.
  EXPECT_TRUE(FileVisibleTo(alices, ""));
  EXPECT_TRUE(FileVisibleTo(FileOf(""), ""));
  EXPECT_TRUE(FileVisibleTo("files/abc123", ""));
}

TEST_F(FileServiceTest, GetFileOfAnotherCallerIsNotFoundWithoutAskingGemini) {
  const std::string alices = FileOf(kAlice);
  v1::GetFileRequest request;
  request.set_name(alices);
  bool called = false;
  auto started = StartGetFile(Context(kBob), request, absl::InfiniteFuture(),
                              [&called](absl::StatusOr<v1::File>) { called = true; });
  EXPECT_THAT(started.status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ReasonOf(started.status()), "FILE_NOT_FOUND");
  EXPECT_FALSE(called);
  EXPECT_TRUE(gemini_->calls().empty());
  // Exactly what a file that does not exist gets (Gemini's 404), so existence does not leak.
  EXPECT_EQ(started.status(), FileErrorForCaller(absl::NotFoundError("gone"), alices));

  // Alice's own file is asked for.
  std::optional<absl::StatusOr<v1::File>> result;
  auto own = StartGetFile(Context(kAlice), request, absl::InfiniteFuture(),
                          [&result](absl::StatusOr<v1::File> f) { result = std::move(f); });
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_EQ(gemini_->calls().size(), 1u);
  EXPECT_EQ(gemini_->calls()[0]->name, alices);
  gemini_->calls()[0]->file_done(ActiveFile(alices));
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ((*result)->name(), alices);
}

TEST_F(FileServiceTest, GetFileByUriIsCheckedToo) {
  const std::string alices = FileOf(kAlice);
  v1::GetFileRequest request;
  request.set_name(absl::StrCat(options_.files_base_uri, "/", alices));
  auto started = StartGetFile(Context(kBob), request, absl::InfiniteFuture(),
                              [](absl::StatusOr<v1::File>) {});
  EXPECT_THAT(started.status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(gemini_->calls().empty());
}

TEST_F(FileServiceTest, DeleteFileOfAnotherCallerIsNotFoundWithoutAskingGemini) {
  v1::DeleteFileRequest request;
  request.set_name(FileOf(kAlice));
  auto started =
      StartDeleteFile(Context(kBob), request, absl::InfiniteFuture(), [](absl::Status) {});
  EXPECT_THAT(started.status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ReasonOf(started.status()), "FILE_NOT_FOUND");
  EXPECT_TRUE(gemini_->calls().empty());
  // Untagged files are nobody's while authentication is on.
  request.set_name(FileOf(""));
  EXPECT_THAT(StartDeleteFile(Context(kAlice), request, absl::InfiniteFuture(), [](absl::Status) {})
                  .status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(gemini_->calls().empty());
  // Authentication off: any file goes to Gemini.
  ASSERT_TRUE(
      StartDeleteFile(Context(""), request, absl::InfiniteFuture(), [](absl::Status) {}).ok());
  ASSERT_EQ(gemini_->calls().size(), 1u);
  EXPECT_EQ(gemini_->calls()[0]->method, "DeleteFile");
}

TEST_F(FileServiceTest, UsingAnotherCallersFileIsNotFoundWithoutAskingGemini) {
  std::optional<absl::StatusOr<gemini::File>> result;
  AwaitActiveFile(Context(kBob), FileOf(kAlice), absl::InfiniteFuture(),
                  std::make_shared<StagedCall>(),
                  [&result](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ReasonOf(result->status()), "FILE_NOT_FOUND");
  EXPECT_TRUE(gemini_->calls().empty());
}

gemini::File ProcessingFile(const std::string& name) {
  gemini::File file = ActiveFile(name);
  file.state = "PROCESSING";
  return file;
}

TEST_F(FileServiceTest, CancelWhileWaitingForTheNextPollEndsTheCallAtOnce) {
  std::optional<absl::StatusOr<gemini::File>> result;
  auto call = std::make_shared<StagedCall>();
  AwaitActiveFile(Context(""), "files/still-processing", absl::InfiniteFuture(), call,
                  [&result](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  ASSERT_EQ(gemini_->calls().size(), 1u);
  gemini_->calls()[0]->file_done(ProcessingFile("files/still-processing"));
  ASSERT_EQ(timer_->Pending(), 1u);  // the next poll
  ASSERT_FALSE(result.has_value());

  call->Cancel();
  // Now, not at the next poll (up to 2 s later): the timer's callback is gone.
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(timer_->Pending(), 0u);
  timer_->Advance(absl::Seconds(10));
  EXPECT_EQ(gemini_->calls().size(), 1u) << "polled after the cancel";
}

TEST_F(FileServiceTest, CancelDuringAPollEndsTheCallToo) {
  std::optional<absl::StatusOr<gemini::File>> result;
  auto call = std::make_shared<StagedCall>();
  AwaitActiveFile(Context(""), "files/p", absl::InfiniteFuture(), call,
                  [&result](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  ASSERT_EQ(gemini_->calls().size(), 1u);
  call->Cancel();  // cancels the GetFile in flight (the fake answers CANCELLED at once)
  EXPECT_TRUE(gemini_->calls()[0]->cancelled.HasBeenNotified());
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(timer_->Pending(), 0u);
}

TEST_F(FileServiceTest, FileStillProcessingAtTheDeadlineIsDeadlineExceeded) {
  const absl::Time deadline = timer_->Now() + absl::Seconds(1);
  std::optional<absl::StatusOr<gemini::File>> result;
  AwaitActiveFile(Context(""), "files/slow", deadline, std::make_shared<StagedCall>(),
                  [&result](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  std::size_t answered = 0;
  while (!result.has_value() && answered < 20) {
    auto calls = gemini_->calls();
    ASSERT_GT(calls.size(), answered) << "neither a poll nor a result";
    EXPECT_EQ(calls[answered]->method, "GetFile");
    EXPECT_EQ(calls[answered]->options.deadline, deadline);
    calls[answered++]->file_done(ProcessingFile("files/slow"));
    if (auto due = timer_->NextDue()) timer_->Advance(*due - timer_->Now());
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kDeadlineExceeded,
                                         HasSubstr("still PROCESSING")));
  EXPECT_LE(timer_->Now(), deadline);  // given up when the next poll would be too late
  EXPECT_GE(answered, 3u);              // polled with backoff (100, 200, 400 ms...) meanwhile
}

TEST_F(FileServiceTest, DedupeFindsOnlyTheCallersOwnFiles) {
  const std::string hex(64, 'a');
  const std::string wire = gemini::Sha256HashFromHex(hex);
  const std::string alices = FileOf(kAlice);
  gemini::ListFilesResponse page;
  page.files = {ActiveFile(alices, wire), ActiveFile(FileOf(""), wire)};

  auto find = [&](const std::string& owner_tag) {
    std::optional<absl::StatusOr<std::optional<gemini::File>>> result;
    FindFileByHash(Context(owner_tag), hex, kFileSize, absl::InfiniteFuture(),
                   std::make_shared<StagedCall>(),
                   [&result](absl::StatusOr<std::optional<gemini::File>> r) {
                     result = std::move(r);
                   });
    auto calls = gemini_->calls();
    if (!result.has_value() && !calls.empty() && calls.back()->list_done) {
      calls.back()->list_done(page);
    }
    EXPECT_TRUE(result.has_value());
    EXPECT_TRUE(result->ok());
    return **result;
  };
  // Bob: neither alice's file nor the untagged one.
  EXPECT_EQ(find(kBob), std::nullopt);
  // Alice: hers, and now from the cache for her...
  ASSERT_TRUE(find(kAlice).has_value());
  const std::size_t calls = gemini_->calls().size();
  ASSERT_TRUE(find(kAlice).has_value());
  EXPECT_EQ(gemini_->calls().size(), calls) << "alice's second lookup is a cache hit";
  // ...but the cache never answers bob with alice's file.
  EXPECT_EQ(find(kBob), std::nullopt);
  EXPECT_EQ(gemini_->calls().size(), calls + 1) << "bob's lookup goes to Gemini's list";
}

// Issue #17: the file an image resolves to holds that image. A display name is the caller's
// text, so a hash written there counts only as the gateway's own verified tag (file_id.h), and
// the size must agree too.
TEST_F(FileServiceTest, DedupeTrustsOnlyFilesThatHoldTheBytes) {
  const std::string hex = gemini::Sha256::HexOf("the bytes of image Y");
  const std::string wire = gemini::Sha256HashFromHex(hex);
  auto find = [&](std::vector<gemini::File> files) {
    std::optional<absl::StatusOr<std::optional<gemini::File>>> result;
    FindFileByHash(Context(""), hex, kFileSize, absl::InfiniteFuture(),
                   std::make_shared<StagedCall>(),
                   [&result](absl::StatusOr<std::optional<gemini::File>> r) {
                     result = std::move(r);
                   });
    auto calls = gemini_->calls();
    gemini::ListFilesResponse page;
    page.files = std::move(files);
    if (!result.has_value() && !calls.empty() && calls.back()->list_done) {
      calls.back()->list_done(page);
    }
    EXPECT_TRUE(result.has_value() && result->ok());
    return result.has_value() && result->ok() ? **result : std::nullopt;
  };
  // A caller's upload of other bytes named with the old, unauthenticated tag of Y's hash.
  gemini::File planted = ActiveFile(FileOf(""), gemini::Sha256HashFromHex(std::string(64, 'e')));
  planted.display_name = "anything|vg-src-sha256=" + hex;
  // The gateway's tag for Y's hash, but copied onto another file / forged with a wrong MAC.
  gemini::File copied = ActiveFile(FileOf(""));
  copied.display_name =
      TagDisplayName("x", FileOf(""), hex, kFileSize, options_.file_tag_key);
  gemini::File wrong_mac = ActiveFile(FileOf(""));
  wrong_mac.display_name = TagDisplayName("x", wrong_mac.name, hex, kFileSize, "another key");
  // A verified tag for Y's hash but another size; Gemini's hash of Y's hash with another size.
  gemini::File other_size = ActiveFile(FileOf(""));
  other_size.display_name =
      TagDisplayName("x", other_size.name, hex, kFileSize + 1, options_.file_tag_key);
  gemini::File hash_other_size = ActiveFile(FileOf(""), wire);
  hash_other_size.size_bytes = kFileSize - 1;
  EXPECT_EQ(find({planted, copied, wrong_mac, other_size, hash_other_size}), std::nullopt);
  EXPECT_EQ(gemini_->calls().size(), 1u);

  // What does hold Y: Gemini's own hash and size, or the gateway's tag on that very file.
  gemini::File stored = ActiveFile(FileOf(""), wire);
  std::optional<gemini::File> found = find({planted, stored});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, stored.name);
  runtime_->hashes().Forget(stored.name);
  gemini::File upright = ActiveFile(FileOf(""));
  upright.size_bytes = 99;  // the stored upright bytes differ from the client's
  upright.display_name =
      TagDisplayName("x", upright.name, hex, kFileSize, options_.file_tag_key);
  found = find({planted, upright});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, upright.name);
}

TEST_F(FileServiceTest, ListFilesWithoutAuthenticationPassesGeminisPagesThrough) {
  gemini::ListFilesResponse page;
  page.files = {ActiveFile(FileOf(kAlice)), ActiveFile(FileOf("")), ActiveFile("files/other")};
  page.next_page_token = "gemini-token";
  auto listed = List(Context(""), 3, "t0", {{"t0", page}});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->files_size(), 3);
  EXPECT_EQ(listed->next_page_token(), "gemini-token");
  EXPECT_THAT(page_sizes_, ElementsAre(3));
}

TEST_F(FileServiceTest, ListFilesShowsOnlyTheCallersFilesAcrossPages) {
  // Gemini's list, 2 pages of 100: alice's files at scattered places among bob's, untagged and
  // foreign files.
  std::vector<std::string> alices;
  std::map<std::string, gemini::ListFilesResponse> pages;
  for (int p = 0; p < 2; ++p) {
    gemini::ListFilesResponse& page = pages[p == 0 ? "" : "g1"];
    for (int i = 0; i < 100; ++i) {
      std::string name;
      if (i % 7 == 3 || (p == 1 && i == 99)) {
        name = FileOf(kAlice);
        alices.push_back(name);
      } else if (i % 3 == 0) {
        name = FileOf(kBob);
      } else if (i % 3 == 1) {
        name = FileOf("");
      } else {
        name = absl::StrCat("files/elsewhere", p, "x", i);
      }
      page.files.push_back(ActiveFile(name));
    }
    if (p == 0) page.next_page_token = "g1";
  }
  // Page through with page_size 4: every one of alice's files exactly once, in order, nobody
  // else's.
  std::vector<std::string> seen;
  std::string token;
  int calls = 0;
  do {
    auto listed = List(Context(kAlice), 4, token, pages);
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_LE(listed->files_size(), 4);
    for (const v1::File& file : listed->files()) seen.push_back(file.name());
    token = listed->next_page_token();
    ASSERT_LT(++calls, 100);
  } while (!token.empty());
  EXPECT_EQ(seen, alices);
  for (const int size : page_sizes_) EXPECT_EQ(size, 100) << "filtering reads full pages";

  // Bob sees only his.
  auto bobs = List(Context(kBob), 100, "", pages);
  ASSERT_TRUE(bobs.ok());
  for (const v1::File& file : bobs->files()) EXPECT_TRUE(FileVisibleTo(file.name(), kBob));
}

TEST_F(FileServiceTest, ListFilesTokenAfterAFullPageAtTheEndOfGeminisPage) {
  const std::string a1 = FileOf(kAlice), a2 = FileOf(kAlice), a3 = FileOf(kAlice);
  gemini::ListFilesResponse first, second;
  first.files = {ActiveFile(FileOf(kBob)), ActiveFile(a1), ActiveFile(a2)};
  first.next_page_token = "next";
  second.files = {ActiveFile(a3)};
  const std::map<std::string, gemini::ListFilesResponse> pages = {{"", first}, {"next", second}};
  auto listed = List(Context(kAlice), 2, "", pages);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->files_size(), 2);
  EXPECT_EQ(listed->files(1).name(), a2);
  ASSERT_FALSE(listed->next_page_token().empty());
  EXPECT_THAT(asked_, ElementsAre("")) << "a full page needs no look ahead";
  auto rest = List(Context(kAlice), 2, listed->next_page_token(), pages);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->files_size(), 1);
  EXPECT_EQ(rest->files(0).name(), a3);
  EXPECT_EQ(rest->next_page_token(), "");
}

TEST_F(FileServiceTest, ListFilesReadsAtMostABoundedNumberOfGeminiPages) {
  // A long list with none of alice's files: each call reads kMaxListScanPages pages, answers an
  // empty page with a token, and the next call goes on where it stopped.
  std::map<std::string, gemini::ListFilesResponse> pages;
  for (int p = 0; p < 2 * kMaxListScanPages + 1; ++p) {
    gemini::ListFilesResponse& page = pages[p == 0 ? "" : absl::StrCat("p", p)];
    page.files = {ActiveFile(FileOf(kBob))};
    page.next_page_token = absl::StrCat("p", p + 1);
  }
  auto listed = List(Context(kAlice), 10, "", pages);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->files_size(), 0);
  EXPECT_FALSE(listed->next_page_token().empty());
  EXPECT_EQ(asked_.size(), static_cast<std::size_t>(kMaxListScanPages));
  auto more = List(Context(kAlice), 10, listed->next_page_token(), pages);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(asked_[kMaxListScanPages], absl::StrCat("p", kMaxListScanPages));
}

TEST_F(FileServiceTest, ListFilesRefusesTokensItDidNotMake) {
  for (const std::string token : {"gemini-token", "dmcxLjEyMw", "dmcxLjEwMC54"}) {
    auto listed = List(Context(kAlice), 10, token, {});
    EXPECT_THAT(listed.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("page_token")))
        << token;
  }
  EXPECT_TRUE(gemini_->calls().empty());
}

TEST_F(FileServiceTest, ListFilesUpstreamErrorReachesTheCaller) {
  v1::ListFilesRequest request;
  std::optional<absl::StatusOr<v1::ListFilesResponse>> result;
  ASSERT_TRUE(StartListFiles(Context(kAlice), request, absl::InfiniteFuture(),
                             [&result](absl::StatusOr<v1::ListFilesResponse> r) {
                               result = std::move(r);
                             })
                  .ok());
  ASSERT_EQ(gemini_->calls().size(), 1u);
  gemini_->calls()[0]->list_done(absl::UnavailableError("upstream down"));
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->ok());
}

}  // namespace
}  // namespace vision_gateway::vision
