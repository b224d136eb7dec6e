# HAK_SANITIZE=address|thread: build hakmem's own code with a sanitizer.
# ASan/TSan replace the libc allocation names themselves, so these builds leave the
# shim out and test hakmem through the hak_* API (libhakmem-api.a).
function(hak_apply_sanitizer tgt)
  if(HAK_SANITIZE STREQUAL "address")
    target_compile_options(${tgt} PUBLIC -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${tgt} PUBLIC -fsanitize=address,undefined)
  elseif(HAK_SANITIZE STREQUAL "thread")
    target_compile_options(${tgt} PUBLIC -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${tgt} PUBLIC -fsanitize=thread)
  elseif(NOT HAK_SANITIZE STREQUAL "")
    message(FATAL_ERROR "HAK_SANITIZE must be address, thread or empty")
  endif()
endfunction()
