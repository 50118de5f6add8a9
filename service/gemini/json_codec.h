// JSON wire codec for the Gemini REST messages in types.h (lowerCamelCase on the wire): one
// include for all of it. The pieces, each with its own header and tests:
//   json_text.h       string literals and base64 appended in place (building blocks)
//   generate_codec.h  generateContent / streamGenerateContent / countTokens, our direction
//   files_codec.h     Files API and models.list, our direction
//   reverse_codec.h   requests decoded / responses encoded as Gemini does, for tests and tooling;
//                     its definitions are in vg_gemini_reverse_codec, not in vg_gemini
//
// Encoding writes the body string directly (one reservation; image bytes are base64-encoded
// straight into it). Decoding uses Boost.JSON inside the codecs' .cc files only. Every input is
// bounded by JsonCodecOptions::max_body_bytes. Decoders ignore unknown fields; a field of the
// wrong type is an error that names the field's path, never its value.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_H_
#define VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_H_

#include "service/gemini/files_codec.h"       // IWYU pragma: export
#include "service/gemini/generate_codec.h"    // IWYU pragma: export
#include "service/gemini/json_codec_options.h"  // IWYU pragma: export
#include "service/gemini/json_text.h"         // IWYU pragma: export
#include "service/gemini/reverse_codec.h"     // IWYU pragma: export

#endif  // VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_H_
