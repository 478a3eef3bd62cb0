# Warnings of STYLE.md §2.11 for our own targets (never generated code).
function(obsync_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
    -Wmissing-prototypes -Wold-style-definition -Wvla -Wcast-qual
    -Wimplicit-fallthrough -Wnull-dereference)
  if(OBSYNC_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
