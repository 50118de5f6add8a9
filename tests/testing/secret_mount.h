// A temporary directory laid out the way the kubelet mounts a Secret with one key, and updated
// the way the kubelet updates it:
//   <dir>/<name> -> ..data/<name>,  <dir>/..data -> ..vN/,  <dir>/..vN/<name>
// Publish() writes a new version directory, renames a fresh symlink over ..data (one atomic
// step, as the kubelet's AtomicWriter does) and removes the previous version.
#ifndef VISION_GATEWAY_TESTS_TESTING_SECRET_MOUNT_H_
#define VISION_GATEWAY_TESTS_TESTING_SECRET_MOUNT_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vision_gateway::testing {

class SecretMount {
 public:
  explicit SecretMount(std::string name = "gemini-api-key") : name_(std::move(name)) {
    std::string pattern = (std::filesystem::temp_directory_path() / "vg-secret.XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    std::filesystem::create_symlink("..data/" + name_, dir_ / name_);
  }
  ~SecretMount() { std::filesystem::remove_all(dir_); }
  SecretMount(const SecretMount&) = delete;
  SecretMount& operator=(const SecretMount&) = delete;

  std::filesystem::path path() const { return dir_ / name_; }

  void Publish(const std::string& content) {
    namespace fs = std::filesystem;
    const std::string version = absl::StrCat("..v", ++versions_);
    fs::create_directory(dir_ / version);
    {
      std::ofstream out(dir_ / version / name_, std::ios::binary | std::ios::trunc);
      out << content;
      ASSERT_TRUE(out.good());
    }
    fs::create_symlink(version, dir_ / "..data_tmp");
    fs::rename(dir_ / "..data_tmp", dir_ / "..data");
    if (versions_ > 1) fs::remove_all(dir_ / absl::StrCat("..v", versions_ - 1));
  }

 private:
  std::string name_;
  std::filesystem::path dir_;
  int versions_ = 0;
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_SECRET_MOUNT_H_
