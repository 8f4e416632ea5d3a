// The code editor: <code-input> (vendor/code-input) highlighted by Prism (vendor/prism).
codeInput.registerTemplate("code", new codeInput.templates.Prism(Prism, [new codeInput.plugins.Indent(true, 2)]));
