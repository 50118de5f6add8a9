#include "service/vision/spatial_results.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/image/binary_mask.h"
#include "service/image/coco_rle.h"
#include "service/image/mask_codec.h"
#include "service/image/polygon.h"
#include "service/vision/model_family.h"
#include "service/vision/model_options.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

// How much of the model's text an MODEL_OUTPUT_INVALID error quotes.
constexpr size_t kExcerptBytes = 200;

// Drops a UTF-8 sequence cut off at the end of `text` (proto string fields must be valid UTF-8).
void TrimToUtf8Boundary(std::string& text) {
  size_t end = text.size();
  size_t start = end;  // start of the last sequence
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start == 0) return;
  const unsigned char lead = static_cast<unsigned char>(text[start - 1]);
  const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (end - (start - 1) < length) text.resize(start - 1);
}

}  // namespace

template <typename Response>
void SpatialResults<Response>::ReportDone(absl::Status status) {
  on_done_called_ = true;
  callbacks_.on_done(std::move(status));
}

template <typename Response>
void SpatialResults<Response>::OnChunk(const gemini::GenerateContentResponse& chunk) {
  if (!chunk.candidates.empty() && !chunk.candidates.front().finish_reason.empty()) {
    finish_reason_ = chunk.candidates.front().finish_reason;
  }
  if (chunk.usage_metadata) usage_ = *chunk.usage_metadata;
  if (chunk.cached) cached_ = true;
  if (!chunk.model_version.empty()) model_version_ = chunk.model_version;
  if (!failure_.ok()) return;

  const std::string text = gemini::AnswerText(chunk);
  if (excerpt_.size() < kExcerptBytes) {
    excerpt_.append(text, 0, std::min(text.size(), kExcerptBytes - excerpt_.size()));
    if (excerpt_.size() == kExcerptBytes) TrimToUtf8Boundary(excerpt_);
  }
  absl::Status fed =
      parser_.Feed(text, [this](std::string_view element) { OnElement(element); });
  if (!fed.ok()) {
    failure_ = WithErrorInfo(absl::InternalError(absl::StrCat(
                                 "the model's answer could not be parsed: ", fed.message())),
                             "MODEL_OUTPUT_INVALID");
    CancelUpstream();
  }
}

template <typename Response>
void SpatialResults<Response>::OnDone(absl::Status status) {
  done_reported_ = true;
  if (!failure_.ok()) {
    ReportDone(failure_);
    return;
  }
  if (!status.ok()) {
    ReportDone(ToCallerStatus(std::move(status)));
    return;
  }
  if (!parser_.array_started()) {
    ReportDone(WithErrorInfo(
        absl::InternalError("the model's answer holds no JSON array of objects"),
        "MODEL_OUTPUT_INVALID", {{"finish_reason", finish_reason_}, {"excerpt", excerpt_}}));
    return;
  }
  Response summary_message;
  v1::Summary* summary = summary_message.mutable_summary();
  summary->set_count(emitted_);
  summary->set_dropped(dropped_);
  summary->set_finish_reason(finish_reason_);
  summary->set_model_version(model_version_);
  if (without_mask_ > 0) {
    summary->set_without_mask(without_mask_);
    std::vector<std::string> reasons;
    for (const auto& [why, count] : mask_problems_) {
      reasons.push_back(absl::StrCat("mask ", why, " (", count, ")"));
    }
    summary->set_without_mask_reason(absl::StrCat(
        absl::StrJoin(reasons, ", "), "; model ",
        model_version_.empty() ? params_.model : model_version_,
        " returned boxes without usable masks (try --segment_model or a model that returns "
        "masks)"));
  }
  summary->set_model_rerouted(
      CheckRerouted(params_.reroutes.get(), params_.model, model_version_));
  // A cached answer billed this call nothing: the original usage is reported apart.
  *(cached_ ? summary->mutable_cached_usage() : summary->mutable_usage()) = ToUsage(usage_);
  summary->set_cached(cached_);
  callbacks_.on_response(std::move(summary_message));
  ReportDone(absl::OkStatus());
}

template <typename Response>
void SpatialResults<Response>::OnStepFailed(const char* what) {
  LogError("Detect/Segment result processing failed: %s", what);
  if (done_reported_) {
    // OnDone itself threw: end the call if it had not been ended yet.
    if (!on_done_called_) {
      ReportDone(WithErrorInfo(absl::InternalError("the gateway could not finish the answer"),
                               reasons::kInternalError));
    }
    return;
  }
  if (failure_.ok()) {
    failure_ = WithErrorInfo(
        absl::InternalError("the gateway could not process the model's answer (out of memory?)"),
        reasons::kInternalError);
  }
  CancelUpstream();
}

template <typename Response>
void SpatialResults<Response>::OnElement(std::string_view element) {
  auto item = ParseSpatialItem(element, kIsSegment<Response>, params_.item_limits);
  if (!item.ok()) {
    // A box whose mask is unusable (the item parsed up to its mask): counted apart, so that
    // the Summary says how many objects came without a mask and why.
    constexpr std::string_view kDegenerate = "degenerate mask: ";
    const std::string_view message(item.status().message().data(),
                                   item.status().message().size());
    if (kIsSegment<Response> && message.substr(0, kDegenerate.size()) == kDegenerate) {
      return WithoutMask(std::string(message.substr(kDegenerate.size())));
    }
    return Drop(telemetry::DropReason::kMalformed);
  }
  if (emitted_ >= params_.max_objects) return Drop(telemetry::DropReason::kOverLimit);
  const std::optional<NormBox> norm = NormalizeBox(item->box_2d);
  if (!norm) return Drop(telemetry::DropReason::kInvalidBox);
  if (width_ == 0 || height_ == 0) {
    // A file of unknown size: the label and the normalized box only (no pixel geometry).
    if (norm->x_max <= norm->x_min || norm->y_max <= norm->y_min) {
      return Drop(telemetry::DropReason::kEmptyBox);
    }
    Response response;
    if constexpr (kIsSegment<Response>) {
      FillNormalized(*item, *norm, *response.mutable_mask());
    } else {
      FillNormalized(*item, *norm, *response.mutable_detection());
    }
    ++emitted_;
    if (record_) record_->AddObjects(1);
    callbacks_.on_response(std::move(response));
    return;
  }
  const PixelBox box = ToPixelBox(*norm, width_, height_);
  if (box.x_max <= box.x_min || box.y_max <= box.y_min) {
    return Drop(telemetry::DropReason::kEmptyBox);
  }
  Response response;
  if constexpr (kIsSegment<Response>) {
    v1::Mask* mask = response.mutable_mask();
    if (!FillMask(*item, box, *mask)) return WithoutMask("mask empty or undecodable");
    FillObject(*item, *norm, box, *mask);
  } else {
    FillObject(*item, *norm, box, *response.mutable_detection());
  }
  ++emitted_;
  if (record_) record_->AddObjects(1);
  callbacks_.on_response(std::move(response));
}

template <typename Response>
void SpatialResults<Response>::Drop(telemetry::DropReason reason) {
  ++dropped_;
  if (record_) record_->AddDropped(reason);
}

template <typename Response>
void SpatialResults<Response>::WithoutMask(std::string why) {
  ++without_mask_;
  auto it = std::find_if(mask_problems_.begin(), mask_problems_.end(),
                         [&why](const auto& entry) { return entry.first == why; });
  if (it == mask_problems_.end()) {
    mask_problems_.emplace_back(std::move(why), 1);
  } else {
    ++it->second;
  }
  Drop(telemetry::DropReason::kDegenerateMask);
}

template <typename Response>
template <typename Object>
void SpatialResults<Response>::FillNormalized(const SpatialItem& item, const NormBox& norm,
                                              Object& object) {
  object.set_index(emitted_);
  object.set_label(item.label);
  v1::NormalizedBox* normalized = object.mutable_normalized_box();
  normalized->set_y_min(norm.y_min);
  normalized->set_x_min(norm.x_min);
  normalized->set_y_max(norm.y_max);
  normalized->set_x_max(norm.x_max);
}

template <typename Response>
template <typename Object>
void SpatialResults<Response>::FillObject(const SpatialItem& item, const NormBox& norm,
                                          const PixelBox& box, Object& object) {
  FillNormalized(item, norm, object);
  v1::BoundingBox* pixels = object.mutable_box();
  pixels->set_x_min(box.x_min);
  pixels->set_y_min(box.y_min);
  pixels->set_x_max(box.x_max);
  pixels->set_y_max(box.y_max);
}

template <typename Response>
bool SpatialResults<Response>::FillMask(const SpatialItem& item, const PixelBox& box,
                                        v1::Mask& out) {
  const image::PixelRect rect{.x = box.x_min,
                              .y = box.y_min,
                              .width = box.x_max - box.x_min,
                              .height = box.y_max - box.y_min};
  // The call's mask buffer, reused from object to object.
  image::BinaryMask& mask = mask_;
  if (item.mask_kind == SpatialItem::MaskKind::kPng) {
    if (!image::MaskFromPng(item.mask_png, rect.width, rect.height, params_.threshold, mask).ok()) {
      return false;
    }
  } else if (item.mask_kind == SpatialItem::MaskKind::kPolygon) {
    mask = image::RasterizePolygon(PolygonToPixels(item.polygon, width_, height_), rect);
  } else {
    return false;
  }
  const int64_t area = image::MaskArea(mask);
  if (area == 0) return false;
  out.set_area(area);
  out.set_png(image::EncodeMaskPng(mask));
  out.mutable_rle()->add_size(height_);
  out.mutable_rle()->add_size(width_);
  out.mutable_rle()->set_counts(image::EncodeCocoRle(mask, rect.x, rect.y, width_, height_));
  return true;
}

template class SpatialResults<v1::DetectResponse>;
template class SpatialResults<v1::SegmentResponse>;

}  // namespace vision_gateway::vision
