// Small valid image files for tests, made without any image library.
#ifndef VISION_GATEWAY_TESTS_TESTING_TEST_IMAGES_H_
#define VISION_GATEWAY_TESTS_TESTING_TEST_IMAGES_H_

#include <cstdint>
#include <string>

namespace vision_gateway::testing {

// A valid PNG (8-bit RGB, no filtering, stored deflate blocks) of the given size filled with one
// colour, with an optional rectangle [x0,x1)x[y0,y1) of a second colour.
struct Rgb {
  uint8_t r, g, b;
};
std::string MakePng(int width, int height, Rgb background, Rgb fill = {0, 0, 0}, int x0 = 0,
                    int y0 = 0, int x1 = 0, int y1 = 0);

// A PNG whose header declares width x height but which holds no pixel data (for pixel-limit tests:
// nothing that reads only the header can tell it from a real image of that size).
std::string MakePngHeaderOnly(int width, int height);

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_TEST_IMAGES_H_
