# The CPU kernels, csrc/kernels/ref (the scalar references) and csrc/kernels/cpu (the SIMD
# variants and the run-time choice among them), as the static library pytransformer_kernels.
# Included by CMakeLists.txt (the package) and by tests/cpp/CMakeLists.txt (the kernel test),
# so the test runs the kernels compiled exactly as the package compiles them.
#
# Files named *_<isa>.cpp are compiled with that ISA's flags only; everything else is built for
# the baseline ISA (never -march=native), and csrc/kernels/cpu/cpu_isa.cpp picks the variant at
# run time. -ffp-contract=off: the compiler never fuses a * b + c on its own, so every variant
# rounds where its source says (int8 kernels are bit-identical to their reference on every ISA).
get_filename_component(PYTRANSFORMER_CSRC ${CMAKE_CURRENT_LIST_DIR}/../csrc REALPATH)

file(GLOB PYTRANSFORMER_KERNEL_SOURCES CONFIGURE_DEPENDS
     ${PYTRANSFORMER_CSRC}/kernels/ref/*.cpp ${PYTRANSFORMER_CSRC}/kernels/cpu/*.cpp)
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  list(FILTER PYTRANSFORMER_KERNEL_SOURCES EXCLUDE REGEX ".*_(avx2|avx2_vnni|avx512)\\.cpp$")
endif()
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  list(FILTER PYTRANSFORMER_KERNEL_SOURCES EXCLUDE REGEX ".*_neon\\.cpp$")
endif()

foreach(src ${PYTRANSFORMER_KERNEL_SOURCES})
  if(src MATCHES "_avx2\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  elseif(src MATCHES "_avx2_vnni\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavxvnni")
  elseif(src MATCHES "_avx512\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS
      "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx512bf16;-mfma;-mf16c")
  endif()
endforeach()

add_library(pytransformer_kernels STATIC ${PYTRANSFORMER_KERNEL_SOURCES})
target_include_directories(pytransformer_kernels PUBLIC ${PYTRANSFORMER_CSRC}
                           ${PYTRANSFORMER_CSRC}/include)
target_compile_options(pytransformer_kernels PRIVATE -Wall -Wextra -fno-math-errno
                       -ffp-contract=off)
