// Decorators of the Gemini stubs (generate, files, batches) that record every upstream exchange:
// telemetry (requests by operation/model/outcome, latency, time to first byte, tokens) and the
// call's CallRecord (CallOptions::record: attempts, time waiting on Gemini, tokens). It sits
// directly on the REST client, under any retrying decorator, so that each attempt is one exchange.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_INSTRUMENTED_GEMINI_CLIENT_H_
#define VISION_GATEWAY_SERVICE_GEMINI_INSTRUMENTED_GEMINI_CLIENT_H_

#include <memory>

#include "service/gemini/gemini_client.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::gemini {

// `telemetry` outlives the returned stubs.
std::unique_ptr<GenerateStub> MakeInstrumentedGenerateStub(std::shared_ptr<GenerateStub> inner,
                                                           telemetry::Telemetry& telemetry);
std::unique_ptr<FilesStub> MakeInstrumentedFilesStub(std::shared_ptr<FilesStub> inner,
                                                     telemetry::Telemetry& telemetry);
std::unique_ptr<BatchesStub> MakeInstrumentedBatchesStub(std::shared_ptr<BatchesStub> inner,
                                                         telemetry::Telemetry& telemetry);
// Every stub of `inner` wrapped (the batches stub when set).
GeminiStubs MakeInstrumentedStubs(GeminiStubs inner, telemetry::Telemetry& telemetry);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_INSTRUMENTED_GEMINI_CLIENT_H_
